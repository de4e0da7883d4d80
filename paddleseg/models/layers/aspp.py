"""Atrous spatial pyramid pooling (DeepLabv3, Chen et al., 2017).

Parallel branches on one feature map: a 1x1 conv for rate 1 and a 3x3 conv
dilated by each other rate, optionally an image-pooling branch (global
average pool, 1x1 conv, broadcast back), concatenated along channels and,
optionally, projected by a 1x1 conv (DeepLabv3) - ACFNet keeps the
concatenation (5 x 512 = 2560 channels) without projection.

Sub-layer names are PaddleSeg's ``layers.ASPPModule`` (``aspp_blocks.<i>``,
``global_avg_pool.1``, ``conv_bn_relu``), so its DeepLab weights map onto it.
"""

import paddle
import paddle.nn as nn

from .layer_libs import ConvBNReLU
from .resize import resize_bilinear, spatial_size

__all__ = ['ASPPModule']


class ASPPModule(nn.Layer):
    """Args:
        aspp_ratios (tuple): Dilation rates; 1 is a 1x1 branch, others 3x3
            (ACFNet: (1, 12, 24, 36)).
        in_channels (int): Input channels.
        out_channels (int): Channels of each branch (and of the projection).
        align_corners (bool): For broadcasting the pooled branch back (it is
            a constant map either way).
        image_pooling (bool): Add the global-average-pooling branch.
        projection (bool): Follow the concatenation with a 1x1 ConvBNReLU to
            ``out_channels`` and dropout 0.1 (PaddleSeg / DeepLabv3); without
            it the output has ``out_channels`` times the number of branches.
        bias (bool): Conv biases of the branches (PaddleSeg: True; ACFNet's
            port: False, the convs are followed by batch norm).
    """

    def __init__(self, aspp_ratios, in_channels, out_channels,
                 align_corners=False, image_pooling=False, projection=True,
                 bias=True):
        super().__init__()
        ratios = list(aspp_ratios)
        if not ratios or not all(isinstance(r, int) and r >= 1
                                 for r in ratios):
            raise ValueError('ASPPModule: aspp_ratios must be a non-empty '
                             'list of dilation rates >= 1 (e.g. [1, 12, 24, '
                             '36]), got {!r}.'.format(aspp_ratios))
        self.align_corners = align_corners
        self.aspp_blocks = nn.LayerList([
            ConvBNReLU(in_channels, out_channels, 1 if r == 1 else 3,
                       padding=0 if r == 1 else r, dilation=r,
                       bias_attr=None if bias else False) for r in ratios])
        self.image_pooling = image_pooling
        if image_pooling:
            self.global_avg_pool = nn.Sequential(
                nn.AdaptiveAvgPool2D((1, 1)),
                ConvBNReLU(in_channels, out_channels, 1, bias_attr=False))
        branches = len(ratios) + int(image_pooling)
        self.projection = projection
        if projection:
            self.conv_bn_relu = ConvBNReLU(out_channels * branches,
                                           out_channels, 1)
            self.dropout = nn.Dropout(p=0.1)
        self.out_channels = out_channels * (1 if projection else branches)

    def forward(self, x):
        outs = [block(x) for block in self.aspp_blocks]
        if self.image_pooling:
            pooled = self.global_avg_pool(x)
            outs.append(resize_bilinear(pooled, spatial_size(x),
                                        self.align_corners))
        y = paddle.concat(outs, axis=1)
        if self.projection:
            y = self.dropout(self.conv_bn_relu(y))
        return y
