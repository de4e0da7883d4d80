"""FCN (Long et al., CVPR 2015) in PaddleSeg's form: a backbone, a 1x1 head
on one stage, logits upsampled to the input size."""

import paddle.nn as nn

from paddleseg.cvlibs import manager
from paddleseg.utils.weights import load_entire_model
from .heads import FCNHead
from .layers import resize_bilinear, spatial_size

__all__ = ['FCN']


@manager.MODELS.add_component
class FCN(nn.Layer):
    """Args:
        num_classes (int): Number of classes.
        backbone (nn.Layer): Built backbone with ``feat_channels``.
        backbone_indices (tuple): The backbone output the head uses.
        channels (int, optional): Hidden channels of the head.
        align_corners (bool): For the final bilinear upsampling.
        pretrained (str, optional): Whole-model checkpoint (path or URL).
        bias (bool): Conv biases in the head.
        data_format (str): Only 'NCHW'.
    """

    def __init__(self, num_classes, backbone, backbone_indices=(-1, ),
                 channels=None, align_corners=False, pretrained=None,
                 bias=True, data_format='NCHW'):
        super().__init__()
        if data_format != 'NCHW':
            raise ValueError("Only data_format 'NCHW' is supported, got {!r}."
                             .format(data_format))
        self.backbone = backbone
        self.align_corners = align_corners
        channels_in = [backbone.feat_channels[i] for i in backbone_indices]
        self.head = FCNHead(num_classes, backbone_indices, channels_in,
                            channels, bias)
        if pretrained:
            load_entire_model(self, pretrained)

    def forward(self, x):
        logits = self.head(self.backbone(x))
        size = spatial_size(x)
        return [resize_bilinear(logit, size, self.align_corners)
                for logit in logits]
