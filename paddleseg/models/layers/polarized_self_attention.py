"""Polarized self-attention (Liu et al., "Polarized Self-Attention: Towards
High-quality Pixel-wise Regression", 2021), parallel layout, as PaddleSeg 2.8
places it in HRNet's basic blocks (``use_psa``).

Two branches re-weight the input and are summed: a channel-only branch (one
softmax over the pixels pools the values into a per-channel sigmoid gate) and
a spatial-only branch (the globally averaged query, dotted with each pixel's
values, gives a per-pixel sigmoid gate). Parameter names are PaddleSeg's
(``conv_q_right``, ``conv_v_right``, ``conv_up``, ``conv_q_left``,
``conv_v_left``, all without bias), so its checkpoints load unchanged.

The global average is written as ``mean`` over the spatial axes (PaddleSeg
uses ``AdaptiveAvgPool2D(1)``; the value is the same), which every backend
runs and which needs no pooling attributes in an exported graph.
"""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .resize import spatial_size

__all__ = ['PolarizedSelfAttentionModule']


def _conv1x1(in_channels, out_channels):
    """1x1 conv without bias, Kaiming-normal (PaddleSeg's initialisation)."""
    return nn.Conv2D(in_channels, out_channels, 1, bias_attr=False,
                     weight_attr=nn.initializer.KaimingNormal())


class PolarizedSelfAttentionModule(nn.Layer):
    """out = x * channel_gate(x) + x * spatial_gate(x).

    Args:
        inplanes (int): Channels of the input.
        planes (int): Channels of the channel gate, which multiplies the
            input: equal to ``inplanes`` (as HRNet uses it). The branches work
            on ``planes // 2`` channels.
        kernel_size (int): Accepted for PaddleSeg's signature; every conv of
            the module is 1x1 there as here.
        stride (int): Accepted for PaddleSeg's signature; only 1 keeps the
            gates the input's size.
    """

    def __init__(self, inplanes, planes, kernel_size=1, stride=1):
        super().__init__()
        if planes != inplanes or planes < 2:
            raise ValueError(
                'PolarizedSelfAttentionModule gates its input, so planes must '
                'equal inplanes and be at least 2; got inplanes={}, planes={}.'
                .format(inplanes, planes))
        if stride != 1:
            raise ValueError('PolarizedSelfAttentionModule: stride must be 1 '
                             '(a strided gate no longer matches the input), '
                             'got {}.'.format(stride))
        self.inter_planes = planes // 2
        self.conv_q_right = _conv1x1(inplanes, 1)
        self.conv_v_right = _conv1x1(inplanes, self.inter_planes)
        self.conv_up = _conv1x1(self.inter_planes, planes)
        self.conv_q_left = _conv1x1(inplanes, self.inter_planes)
        self.conv_v_left = _conv1x1(inplanes, self.inter_planes)

    def channel_gate(self, x):
        """(N, C, 1, 1) sigmoid weights: the values pooled by one softmax
        over all pixels (PaddleSeg's ``spatial_pool``)."""
        values = self.conv_v_right(x).flatten(2)             # N, C/2, HW
        weights = F.softmax(self.conv_q_right(x).flatten(2), axis=2)
        context = paddle.matmul(values, weights, transpose_y=True)
        return F.sigmoid(self.conv_up(context.unsqueeze(-1)))

    def spatial_gate(self, x):
        """(N, 1, H, W) sigmoid weights: the averaged query dotted with every
        pixel's values, softmax over the pixels (PaddleSeg's
        ``channel_pool``)."""
        query = self.conv_q_left(x).mean(axis=[2, 3]).unsqueeze(1)  # N,1,C/2
        values = self.conv_v_left(x).flatten(2)              # N, C/2, HW
        context = F.softmax(paddle.matmul(query, values), axis=2)
        size = spatial_size(x)
        return F.sigmoid(paddle.reshape(context, [0, 1, size[0], size[1]]))

    def forward(self, x):
        return x * self.channel_gate(x) + x * self.spatial_gate(x)
