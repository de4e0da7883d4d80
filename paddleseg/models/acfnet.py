"""ACFNet (Zhang et al., "ACFNet: Attentional Class Feature Network for
Semantic Segmentation", ICCV 2019): a coarse-to-fine network. A dilated base
network with ASPP gives a coarse prediction; the attentional class feature
(ACF) module turns it into class centers (the probability-weighted mean
feature of each class) and gives every pixel the mix of centers its coarse
probabilities ask for; a fine head classifies that together with the ASPP
features.

No official code and no PaddleSeg model exist. Layer shapes follow the
unofficial PyTorch port (zrl4836/ACFNet), with its defects fixed or made
optional; ``configs/acfnet/README.md`` lists them.
"""

import collections

import paddle.nn as nn

from paddleseg.cvlibs import manager
from paddleseg.utils.weights import load_entire_model
from .heads import ACF_STYLES, ACFCoarseHead, ACFFineHead, ACFModule
from .layers import ASPPModule, AuxLayer, resize_bilinear, spatial_size

__all__ = ['ACFNet']

# What evaluation returns (``eval_output``): the port's fine + coarse, or
# either alone (to measure what the coarse-to-fine step buys).
EVAL_OUTPUTS = ('fine+coarse', 'fine', 'coarse')


def _positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@manager.MODELS.add_component
class ACFNet(nn.Layer):
    """Outputs, all ``(N, num_classes, H, W)`` at the input size:

    - training: ``[fine, coarse, aux, fine + coarse]`` (``output_names``;
      without ``aux`` when ``enable_auxiliary_loss`` is False). The port's
      loss is then ``loss: types [OhemCrossEntropyLoss, CrossEntropyLoss,
      CrossEntropyLoss, LovaszSoftmaxLoss], coef [0.7, 0.6, 0.4, 1.0]``; its
      Lovasz term gets the upsampled sum here, not the 1/8 logits.
    - evaluation: ``[fine + coarse]``, the port's prediction (or
      ``[fine]`` or ``[coarse]``, see ``eval_output``).

    Sub-layers and parameter names (stable; pinned by
    ``tests/models/test_acfnet.py``): ``backbone.*`` (the backbone's own);
    ``aspp.aspp_blocks.<i>._conv|_batch_norm`` and
    ``aspp.global_avg_pool.1._conv|_batch_norm`` (no projection: 5 branches
    concatenated); ``coarse_head.reduce``, ``coarse_head.conv``,
    ``coarse_head.cls``; ``acf.reduce``, ``acf.project``;
    ``fine_head.conv``, ``fine_head.cls``; ``aux_head.conv_bn_relu``,
    ``aux_head.conv``.

    Args:
        num_classes (int): Number of classes.
        backbone (nn.Layer): Built backbone with ``feat_channels``: a
            ResNet*_vd or ECAResNet*_vd at output stride 8, as published.
        backbone_indices (tuple): Two stages: the auxiliary head's and the
            one ASPP runs on.
        aspp_ratios (tuple): ASPP dilation rates (1: the 1x1 branch); an
            image-pooling branch is always added.
        aspp_channels (int): Channels of each ASPP branch (512 = 2048 / 4 in
            the port, so the concatenation has 2560).
        coarse_channels (int): Hidden channels of the coarse head (512).
        acf_channels (int): Channels of the ACF module (512).
        fine_channels (int): Hidden channels of the fine head (1024).
        fine_act (str): Activation of the fine head's hidden layer
            (``leakyrelu``: the port's InPlaceABN default; or ``relu``).
        enable_auxiliary_loss (bool): Add the FCN head on
            ``backbone_indices[0]``.
        aux_channels (int): Hidden channels of that head (256 = 1024 / 4).
        acf_style (str): ``'paper'`` (class centers from the coarse
            probabilities, ``layers.class_centers``) or ``'reference'`` (the
            port's channel attention on raw coarse logits,
            ``layers.reference_class_attention``).
        align_corners (bool): Of the bilinear upsampling to the input size
            (the port upsamples with aligned corners).
        pretrained (str, optional): Whole-model checkpoint (path or URL).
        eval_output (str): What evaluation returns: ``'fine+coarse'`` (the
            port's), ``'fine'`` or ``'coarse'``; no parameter depends on it,
            so ``val.py --opts model.eval_output=coarse`` measures the coarse
            prediction of a trained model.
    """

    def __init__(self, num_classes, backbone, backbone_indices=(2, 3),
                 aspp_ratios=(1, 12, 24, 36), aspp_channels=512,
                 coarse_channels=512, acf_channels=512, fine_channels=1024,
                 fine_act='leakyrelu', enable_auxiliary_loss=True,
                 aux_channels=256, acf_style='paper', align_corners=False,
                 pretrained=None, eval_output='fine+coarse'):
        super().__init__()
        channels = self._check(num_classes, backbone, backbone_indices,
                               acf_style, eval_output,
                               aspp_channels=aspp_channels,
                               coarse_channels=coarse_channels,
                               acf_channels=acf_channels,
                               fine_channels=fine_channels,
                               aux_channels=aux_channels)
        self.backbone = backbone
        self.backbone_indices = tuple(backbone_indices)
        self.enable_auxiliary_loss = enable_auxiliary_loss
        self.acf_style = acf_style
        self.eval_output = eval_output
        self.align_corners = align_corners
        self.aspp = ASPPModule(aspp_ratios, channels[1], aspp_channels,
                               align_corners=True, image_pooling=True,
                               projection=False, bias=False)
        feat = self.aspp.out_channels
        self.coarse_head = ACFCoarseHead(feat, coarse_channels, num_classes)
        self.acf = ACFModule(feat, acf_channels, style=acf_style)
        self.fine_head = ACFFineHead(acf_channels + feat, fine_channels,
                                     num_classes, act_type=fine_act)
        if enable_auxiliary_loss:
            self.aux_head = AuxLayer(channels[0], aux_channels, num_classes,
                                     dropout_prob=0.1, bias_attr=False)
        if pretrained:
            load_entire_model(self, pretrained)

    @staticmethod
    def _check(num_classes, backbone, indices, acf_style, eval_output,
               **widths):
        """Validate the arguments; return the channels of the two stages."""
        if not _positive_int(num_classes):
            raise ValueError('ACFNet: num_classes must be a positive int, got '
                             '{!r}.'.format(num_classes))
        feat_channels = getattr(backbone, 'feat_channels', None)
        if feat_channels is None:
            raise ValueError('ACFNet: the backbone ({}) has no feat_channels; '
                             'pass a built ResNet*_vd or ECAResNet*_vd.'
                             .format(type(backbone).__name__))
        n = len(feat_channels)
        if len(indices) != 2 or not all(
                isinstance(i, int) and -n <= i < n for i in indices):
            raise ValueError(
                'ACFNet: backbone_indices needs two stages of the backbone\'s '
                '{} (the auxiliary head\'s, then ASPP\'s, e.g. [2, 3]), got '
                '{}.'.format(n, list(indices)))
        if acf_style not in ACF_STYLES:
            raise ValueError('ACFNet: acf_style must be one of {}, got {!r}.'
                             .format(', '.join(ACF_STYLES), acf_style))
        if eval_output not in EVAL_OUTPUTS:
            raise ValueError('ACFNet: eval_output must be one of {}, got {!r}.'
                             .format(', '.join(EVAL_OUTPUTS), eval_output))
        for name, value in widths.items():
            if not _positive_int(value):
                raise ValueError('ACFNet: {} must be a positive int, got {!r}.'
                                 .format(name, value))
        return [feat_channels[i] for i in indices]

    @property
    def output_names(self):
        """What each training output is, in order (one loss each)."""
        aux = ('aux', ) if self.enable_auxiliary_loss else ()
        return ('fine', 'coarse') + aux + ('fine+coarse', )

    def _logits(self, feats):
        """(coarse, fine) logits at the backbone's resolution."""
        feat = self.aspp(feats[self.backbone_indices[1]])
        coarse = self.coarse_head(feat)
        return coarse, self.fine_head(self.acf(feat, coarse), feat)

    def forward(self, x):
        feats = self.backbone(x)
        coarse, fine = self._logits(feats)
        size = spatial_size(x)
        if not self.training:
            logit = fine + coarse if self.eval_output == 'fine+coarse' else (
                fine if self.eval_output == 'fine' else coarse)
            return [resize_bilinear(logit, size, self.align_corners)]
        logits = [fine, coarse]
        if self.enable_auxiliary_loss:
            logits.append(self.aux_head(feats[self.backbone_indices[0]]))
        outs = [resize_bilinear(l, size, self.align_corners) for l in logits]
        return outs + [outs[0] + outs[1]]

    def coarse_and_fine(self, x):
        """The coarse and the fine logits at the input size, as
        ``(coarse, fine)`` (for pictures of what the ACF module changes;
        call it under ``paddle.no_grad()`` in evaluation mode)."""
        coarse, fine = self._logits(self.backbone(x))
        size = spatial_size(x)
        return (resize_bilinear(coarse, size, self.align_corners),
                resize_bilinear(fine, size, self.align_corners))

    def dump_assets(self, x):
        """``{'pred_coarse': coarse, 'pred_fine': fine}``: the two logits at
        the input size, for ``predict.py --dump_assets`` (which writes each
        as a palette PNG next to the prediction, coarse + fine)."""
        coarse, fine = self.coarse_and_fine(x)
        return collections.OrderedDict([('pred_coarse', coarse),
                                        ('pred_fine', fine)])
