"""CCNet (Huang et al., ICCV 2019 / TPAMI 2020) in PaddleSeg's form: a dilated
backbone, the recurrent criss-cross attention head on its last stage and an
auxiliary FCN head on the stage before, logits upsampled to the input size.

Arguments, sub-layer and parameter names are PaddleSeg 2.8's, so its configs
and ``.pdparams`` (and CCNet_paddle's) load unchanged. ``configs/ccnet/
README.md`` compares the training and evaluation protocols of the original
repository, PaddleSeg and mmsegmentation.
"""

import paddle.nn as nn

from paddleseg.cvlibs import manager
from paddleseg.utils.weights import load_entire_model
from .heads import RCCAModule
from .layers import AuxLayer, resize_bilinear, spatial_size

__all__ = ['CCNet']


@manager.MODELS.add_component
class CCNet(nn.Layer):
    """Args:
        num_classes (int): Number of classes.
        backbone (nn.Layer): Built backbone with ``feat_channels`` (ResNet*_vd,
            output stride 8 as published).
        backbone_indices (tuple): Two stages: the auxiliary head's and the
            attention head's.
        enable_auxiliary_loss (bool): Add the auxiliary head; its logits come
            second in training (pair it with a loss and ``coef``, 0.4 in
            PaddleSeg's recipe). Evaluation returns the main logits only.
        dropout_prob (float): Dropout before both classifiers.
        recurrence (int): R, the times attention is applied (2 in the
            published results).
        align_corners (bool): For the final bilinear upsampling.
        pretrained (str, optional): Whole-model checkpoint (path or URL).
        cca_backend (str): ``"auto"`` (the native operator where it is faster),
            ``"native"`` or ``"reference"`` (pure Paddle; what ONNX export
            uses). Not a PaddleSeg argument; its default keeps configs as is.
    """

    def __init__(self, num_classes, backbone, backbone_indices=(2, 3),
                 enable_auxiliary_loss=True, dropout_prob=0.0, recurrence=1,
                 align_corners=False, pretrained=None, cca_backend='auto'):
        super().__init__()
        if len(backbone_indices) != 2:
            raise ValueError('CCNet: backbone_indices needs two stages (the '
                             'auxiliary head\'s, the attention head\'s), got '
                             '{}.'.format(list(backbone_indices)))
        if int(recurrence) < 1:
            raise ValueError('CCNet: recurrence must be at least 1, got {}.'
                             .format(recurrence))
        self.backbone = backbone
        self.backbone_indices = tuple(backbone_indices)
        self.enable_auxiliary_loss = enable_auxiliary_loss
        self.recurrence = int(recurrence)
        self.align_corners = align_corners
        channels = [backbone.feat_channels[i] for i in backbone_indices]
        if enable_auxiliary_loss:
            self.aux_head = AuxLayer(channels[0], 512, num_classes,
                                     dropout_prob=dropout_prob)
        self.head = RCCAModule(channels[1], 512, num_classes,
                               dropout_prob=dropout_prob,
                               recurrence=self.recurrence, backend=cca_backend)
        if pretrained:
            load_entire_model(self, pretrained)

    def forward(self, x):
        feats = self.backbone(x)
        logits = [self.head(feats[self.backbone_indices[1]])]
        if self.training and self.enable_auxiliary_loss:
            logits.append(self.aux_head(feats[self.backbone_indices[0]]))
        size = spatial_size(x)
        return [resize_bilinear(logit, size, self.align_corners)
                for logit in logits]

    def attention_maps(self, x, recurrence=None):
        """Per recurrence step, the (N, H, W, H + W) attention weights at the
        head's resolution (for ``tools/visualize_attention.py``)."""
        feats = self.backbone(x)
        return self.head.attention_maps(feats[self.backbone_indices[1]],
                                        recurrence)
