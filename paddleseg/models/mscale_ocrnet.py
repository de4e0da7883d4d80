"""MscaleOCRNet: hierarchical multi-scale attention (Tao, Sapra and
Catanzaro, "Hierarchical Multi-Scale Attention for Semantic Segmentation",
arXiv 2005.10821) on OCRNet, in PaddleSeg 2.8's form.

One network (backbone, OCR head, attention head) runs at several scales of
the input. At each scale the attention head gives a per-pixel weight
``a_s`` in [0, 1] for that scale's prediction ``p_s``; the predictions are
combined from the largest scale down, so only pairs of adjacent scales are
ever weighted against each other and training needs only two (0.5 and 1.0)
while inference may take any list:

- the largest scale initialises ``pred`` (its attention is not used);
- a scale s >= 1: ``pred = a_s * p_s + (1 - a_s) * down(pred)``;
- a scale s < 1: ``pred = up(a_s * p_s) + (1 - up(a_s)) * pred``.

Arguments, sub-layer and parameter names are PaddleSeg's (``ocr.*``,
``scale_attn.*``), so its configs and ``.pdparams`` load unchanged and give
the same logits. One difference: PaddleSeg returns the prediction at the
size of the last scale >= 1 it combined, which is not the input's when 1.0
is not in the list (e.g. 1.5x for ``[0.75, 1.5]``); here the combined
prediction is always resized to the input size. ``configs/mscale_ocrnet/``
has the recipes and what maps to NVIDIA's options.
"""

import collections
import math
import numbers

import paddle
import paddle.nn as nn

from paddleseg.cvlibs import manager
from paddleseg.utils.weights import load_entire_model
from .heads import MscaleOCRHead, ScaleAttentionHead
from .layers import resize_bilinear, resize_by_factor, spatial_size

__all__ = ['MscaleOCRNet', 'check_mscale', 'scale_name']

# The scales of training (NVIDIA's two_scale_forward, MSCALE_LO_SCALE 0.5);
# also evaluation's when ``mscale`` is None.
TRAIN_SCALES = (1.0, 0.5)


def scale_name(scale):
    """``'0.5x'``, ``'1.0x'``, ``'2.0x'``: a scale as NVIDIA names it."""
    return '{!r}x'.format(float(scale))


def check_mscale(mscale):
    """``mscale`` as a list of floats (None stays None: the two training
    scales); a bare number is a one-scale list. Raises ValueError, saying
    what is wrong, for anything else."""
    if mscale is None:
        return None
    if isinstance(mscale, numbers.Real) and not isinstance(mscale, bool):
        mscale = [mscale]
    if not isinstance(mscale, (list, tuple)) or not mscale:
        raise ValueError(
            'MscaleOCRNet: mscale must be a non-empty list of positive scales '
            'such as [0.5, 1.0, 2.0] (or null for the two training scales '
            '0.5 and 1.0), got {!r}.'.format(mscale))
    bad = [s for s in mscale if isinstance(s, bool) or not isinstance(
        s, numbers.Real) or not (s > 0 and math.isfinite(s))]
    if bad:
        raise ValueError(
            'MscaleOCRNet: every scale in mscale must be a positive number; '
            '{!r} in {!r} is not.'.format(bad[0], list(mscale)))
    scales = [float(s) for s in mscale]
    if len(set(scales)) != len(scales):
        raise ValueError('MscaleOCRNet: mscale {!r} repeats a scale; list '
                         'each scale once.'.format(list(mscale)))
    return scales


@manager.MODELS.add_component
class MscaleOCRNet(nn.Layer):
    """Args:
        num_classes (int): Number of classes.
        backbone (nn.Layer): Built backbone with ``feat_channels`` (HRNet:
            one output, ``backbone_indices: [0]``).
        backbone_indices (tuple): One backbone output (regions and pixels
            from it) or two (regions from the first, pixels from the second;
            PaddleSeg's code reads only the first output whatever is given).
        mscale (list|None): Scales of inference, in any order (sorted from
            the largest down), with or without 1.0. None: the training scales
            0.5 and 1.0. Settable later (``model.mscale = [...]``), and from
            the command line: ``--opts model.mscale=[0.75,1.0,1.5]``.
        pretrained (str, optional): Whole-model checkpoint (path or URL).
        ocr_mid_channels (int): Channels of the OCR representation, which
            the attention head reads (PaddleSeg: 512).
        ocr_key_channels (int): Channels of the OCR attention (256).
        attention_channels (int): Bottleneck of the attention head (256).
        align_corners (bool): Of every bilinear resize of the model (scaling
            the input, predictions and attention); PaddleSeg and NVIDIA's
            default: False.
        conv_init (str): Initialisation of the OCR head's convs:
            ``'normal'`` (PaddleSeg's normal(0, 0.001)) or ``'kaiming'`` (for
            training from scratch; set the backbone's ``conv_init`` too), see
            :func:`paddleseg.models.layers.init_conv_bn`. The attention head
            keeps Paddle's default, as in PaddleSeg.

    Outputs, all ``(N, num_classes, H, W)`` at the input size:

    - training: ``[joint_aux, joint_pred, pred_0.5x, pred_1.0x]``
      (``output_names``): the soft object regions and the predictions of
      the 0.5 and 1.0 scales combined by the 0.5 scale's attention, then each
      scale's own prediction. PaddleSeg's loss for them: ``[CE, MixedLoss(RMI,
      CE), CE, CE]``, coef ``[0.4, 1, 0.05, 0.05]``.
    - evaluation: ``[pred]``, the hierarchical combination over ``mscale``.

    Sub-layers and parameter names (stable; pinned by
    ``tests/models/test_mscale_ocrnet.py``): ``backbone.*``;
    ``ocr.conv3x3_ocr``, ``ocr.ocr_distri_head.{f_pixel,f_object}.
    conv_bn_relu_{1,2}``, ``ocr.ocr_distri_head.{f_down,f_up}``,
    ``ocr.ocr_distri_head.conv_bn_dropout.0``, ``ocr.cls_head``,
    ``ocr.aux_head.{0,1}``; ``scale_attn.{conv_bn_re0,conv_bn_re1,conv2}``.
    """

    output_names = ('joint_aux', 'joint_pred', 'pred_0.5x', 'pred_1.0x')

    def __init__(self, num_classes, backbone, backbone_indices=(0, ),
                 mscale=(0.5, 1.0, 2.0), pretrained=None,
                 ocr_mid_channels=512, ocr_key_channels=256,
                 attention_channels=256, align_corners=False,
                 conv_init='normal'):
        super().__init__()
        if len(backbone_indices) not in (1, 2):
            raise ValueError(
                'MscaleOCRNet: backbone_indices takes one backbone output or '
                'two (the soft regions\', the pixels\'), got {}.'.format(
                    list(backbone_indices)))
        self.mscale = mscale
        self.backbone = backbone
        self.backbone_indices = list(backbone_indices)
        self.align_corners = align_corners
        in_channels = [backbone.feat_channels[i] for i in backbone_indices]
        self.ocr = MscaleOCRHead(num_classes, in_channels, ocr_mid_channels,
                                 ocr_key_channels, conv_init=conv_init)
        self.scale_attn = ScaleAttentionHead(ocr_mid_channels, 1,
                                             attention_channels)
        self.pretrained = pretrained
        if pretrained:
            load_entire_model(self, pretrained)

    @property
    def mscale(self):
        """The scales of inference (floats), or None."""
        return self._mscale

    @mscale.setter
    def mscale(self, value):
        self._mscale = check_mscale(value)

    def _resize(self, x, size):
        return resize_bilinear(x, size, self.align_corners)

    def _fwd(self, x, attention=True, aux=False):
        """One scale: ``{'pred', 'attn', 'aux'}`` (as asked) at the size of
        ``x`` (PaddleSeg's ``_fwd``)."""
        size = spatial_size(x)
        feats = self.backbone(x)
        pred, regions, representation = self.ocr(
            [feats[i] for i in self.backbone_indices])
        out = {'pred': self._resize(pred, size)}
        if aux:
            out['aux'] = self._resize(regions, size)
        if attention:
            out['attn'] = self._resize(self.scale_attn(representation), size)
        return out

    def _two_scale(self, x):
        """Training's outputs (PaddleSeg's ``two_scale_forward``)."""
        size = spatial_size(x)
        lo = self._fwd(resize_by_factor(x, 0.5, self.align_corners),
                       aux=True)
        hi = self._fwd(x, attention=False, aux=True)
        attn = self._resize(lo['attn'], size)

        def joint(key):
            return (self._resize(lo['attn'] * lo[key], size) +
                    (1 - attn) * hi[key])

        return [joint('aux'), joint('pred'), self._resize(lo['pred'], size),
                hi['pred']]

    def _nscale(self, x, scales, per_scale=None):
        """The hierarchical combination over ``scales`` at the input size
        (PaddleSeg's ``nscale_forward`` + the resize to the input). Each
        scale's ``pred_<s>x`` and used ``attn_<s>x``, at that scale's size,
        go to ``per_scale`` when it is a dict."""
        pred = None
        for s in sorted(scales, reverse=True):
            out = self._fwd(x if s == 1.0 else resize_by_factor(
                x, s, self.align_corners), attention=pred is not None)
            if per_scale is not None:
                per_scale.update({'{}_{}'.format(k, scale_name(s)): v
                                  for k, v in out.items()})
            if pred is None:
                pred = out['pred']
            elif s >= 1.0:
                attn = out['attn']
                pred = attn * out['pred'] + (1 - attn) * self._resize(
                    pred, spatial_size(out['pred']))
            else:
                size = spatial_size(pred)
                pred = (self._resize(out['attn'] * out['pred'], size) +
                        (1 - self._resize(out['attn'], size)) * pred)
        if 1.0 not in scales:  # PaddleSeg stops here, at another size
            pred = self._resize(pred, spatial_size(x))
        return pred

    def forward(self, x):
        if self.training:
            return self._two_scale(x)
        return [self._nscale(x, self.mscale or TRAIN_SCALES)]

    def dump_assets(self, x):
        """What the multi-scale inference saw, for tools (``predict.py
        --dump_assets`` writes each entry as a PNG named by its key).

        Call it in evaluation mode (``model.eval()``); it runs without
        gradients. It uses the scales of ``forward`` (``mscale``, or 0.5 and
        1.0 when that is None).

        Args:
            x (Tensor): (N, 3, H, W) input, as ``forward`` takes it (after
                the transforms: the maps have this size, not the image
                file's).

        Returns:
            collections.OrderedDict: name -> float32 Tensor, every one at the
            input size (H, W), scales from the smallest up, ``s`` written as
            ``scale_name`` does (``0.5x``, ``1.0x``, ``2.0x``, ``0.75x``):

            - ``'attn_<s>x'``: (N, 1, H, W) in [0, 1], the weight of the
              scale's prediction in its step of the combination (a grey
              map); none for the largest scale, whose attention the
              combination does not use;
            - ``'pred_<s>x'``: (N, K, H, W) logits of that scale alone;
            - ``'pred'`` (last): (N, K, H, W) the combined logits, those of
              ``forward``.

            The key prefix says what an entry is: ``attn_`` a one-channel
            map in [0, 1], ``pred`` K-channel logits.
        """
        scales = self.mscale or TRAIN_SCALES
        per_scale = {}
        with paddle.no_grad():
            pred = self._nscale(x, scales, per_scale)
            size = spatial_size(x)
            assets = collections.OrderedDict()
            for s in sorted(scales):
                for kind in ('attn', 'pred'):
                    key = '{}_{}'.format(kind, scale_name(s))
                    if key in per_scale:
                        assets[key] = self._resize(per_scale[key], size)
            assets['pred'] = pred
        return assets
