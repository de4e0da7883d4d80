"""OCRNet (Yuan et al., "Object-Contextual Representations for Semantic
Segmentation", ECCV 2020) in PaddleSeg's form: a backbone (HRNet in the
published results), the object-contextual head (``heads/ocr_head.py``), the
logits and the soft object regions upsampled to the input size.

Arguments, sub-layer and parameter names are PaddleSeg 2.8's, so its configs
and ``.pdparams`` load unchanged and give the same logits.
``configs/ocrnet/README.md`` has the published numbers and the recipes.
"""

import paddle.nn as nn

from paddleseg.cvlibs import manager
from paddleseg.utils.weights import load_entire_model
from .heads import OCRHead
from .layers import resize_bilinear, spatial_size

__all__ = ['OCRNet']


@manager.MODELS.add_component
class OCRNet(nn.Layer):
    """Args:
        num_classes (int): Number of classes.
        backbone (nn.Layer): Built backbone with ``feat_channels`` (HRNet:
            one output, so ``backbone_indices: [0]``).
        backbone_indices (tuple): One backbone output (soft regions and pixel
            representations from it) or two (regions from the first, pixels
            from the second).
        ocr_mid_channels (int): Channels of the pixel and region
            representations.
        ocr_key_channels (int): Channels of the attention's queries and keys.
        align_corners (bool): For the final bilinear upsampling (PaddleSeg:
            False for even crop sizes such as 1024x512, True for 769x769).
        pretrained (str, optional): Whole-model checkpoint (path or URL).
        conv_init (str): Initialisation of the head's convs: ``'normal'``
            (PaddleSeg's normal(0, 0.001)) or ``'kaiming'`` (for training from
            scratch; set the backbone's ``conv_init`` too), see
            :func:`paddleseg.models.layers.init_conv_bn`.

    In training ``forward`` returns ``[logit, soft_regions]`` (pair them with
    two losses; PaddleSeg's recipe: cross entropy, coef ``[1, 0.4]``); in
    evaluation ``[logit]``.
    """

    def __init__(self, num_classes, backbone, backbone_indices,
                 ocr_mid_channels=512, ocr_key_channels=256,
                 align_corners=False, pretrained=None, conv_init='normal'):
        super().__init__()
        if len(backbone_indices) not in (1, 2):
            raise ValueError(
                'OCRNet: backbone_indices takes one backbone output or two '
                '(the soft regions\', the pixels\'), got {}.'.format(
                    list(backbone_indices)))
        self.backbone = backbone
        self.backbone_indices = list(backbone_indices)
        self.align_corners = align_corners
        in_channels = [backbone.feat_channels[i] for i in backbone_indices]
        self.head = OCRHead(num_classes, in_channels, ocr_mid_channels,
                            ocr_key_channels, conv_init)
        self.pretrained = pretrained
        if pretrained:
            load_entire_model(self, pretrained)

    def forward(self, x):
        feats = self.backbone(x)
        logits = self.head([feats[i] for i in self.backbone_indices])
        if not self.training:
            logits = logits[:1]
        size = spatial_size(x)
        return [resize_bilinear(logit, size, self.align_corners)
                for logit in logits]
