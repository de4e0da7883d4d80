"""The FCN head: 1x1 ConvBNReLU then a 1x1 classifier on one backbone stage."""

import paddle.nn as nn

from ..layers import ConvBNReLU

__all__ = ['FCNHead']


class FCNHead(nn.Layer):
    """Args:
        num_classes (int): Output channels.
        backbone_indices (tuple): Which backbone output to use (one index).
        backbone_channels (tuple): Channels of that output.
        channels (int, optional): Hidden channels (default: the input's).
        bias (bool): Conv biases (PaddleSeg default True).
    """

    def __init__(self, num_classes, backbone_indices=(-1, ),
                 backbone_channels=(270, ), channels=None, bias=True):
        super().__init__()
        self.backbone_indices = backbone_indices
        channels = channels or backbone_channels[0]
        self.conv_1 = ConvBNReLU(backbone_channels[0], channels, 1,
                                 padding='same', stride=1, bias_attr=bias)
        self.cls = nn.Conv2D(channels, num_classes, 1, stride=1, padding=0,
                             bias_attr=bias)

    def forward(self, feat_list):
        x = feat_list[self.backbone_indices[0]]
        return [self.cls(self.conv_1(x))]
