"""The parts HRNet (``hrnet.py``) is built from: residual blocks, the
transitions that add a branch, and the multi-resolution modules (parallel
branches, then fuse layers exchanging information between them).

Each class takes the ``name`` PaddleSeg 2.8 gives it and registers its
sub-layers under PaddleSeg's names (``bb_layer2_1``,
``transition_tr1_layer_2``, ``bb_st3_1_branch_layer_2_4``,
``residual_st3_1_layer_3_1_2`` ...), so the
state-dict keys are PaddleSeg's. ``padding_same`` picks the padding of every
3x3 conv: ``'same'`` (PaddleSeg's default; asymmetric on stride-2 convs over
even sizes, TF convention) or 1 (PyTorch's, for converted weights).
"""

import math

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..layers import (ConvBN, ConvBNReLU, PolarizedSelfAttentionModule,
                      resize_bilinear, spatial_size)

__all__ = ['Layer1', 'TransitionLayer', 'Stage']


def padding_of(padding_same):
    """The ``padding`` argument of a 3x3 conv for ``padding_same``."""
    return 'same' if padding_same else 1


class SELayer(nn.Layer):
    """Squeeze-and-excitation: channel weights from the global average,
    through a bottleneck of ``channels // reduction_ratio`` (PaddleSeg's
    ``squeeze``/``excitation`` linears, uniform +-1/sqrt(fan_in))."""

    def __init__(self, channels, reduction_ratio=16):
        super().__init__()
        mid = int(channels / reduction_ratio)
        if mid < 1:
            raise ValueError(
                'SELayer needs at least {} channels for its reduction ratio {}'
                ', got {}; turn has_se off for so narrow a network.'.format(
                    reduction_ratio, reduction_ratio, channels))
        self.squeeze = nn.Linear(channels, mid, weight_attr=_uniform(channels))
        self.excitation = nn.Linear(mid, channels, weight_attr=_uniform(mid))

    def forward(self, x):
        weights = F.relu(self.squeeze(x.mean(axis=[2, 3])))
        weights = F.sigmoid(self.excitation(weights))
        return x * weights.unsqueeze([2, 3])


def _uniform(fan_in):
    bound = 1.0 / math.sqrt(fan_in)
    return paddle.ParamAttr(initializer=nn.initializer.Uniform(-bound, bound))


class BottleneckBlock(nn.Layer):
    """1x1 -> 3x3 -> 1x1 (x4 channels) [-> SE], plus the shortcut (a 1x1
    ConvBN ``conv_down`` on the first block of stage 1)."""

    def __init__(self, in_channels, channels, has_se=False, downsample=False,
                 padding_same=True):
        super().__init__()
        self.conv1 = ConvBNReLU(in_channels, channels, 1, bias_attr=False)
        self.conv2 = ConvBNReLU(channels, channels, 3,
                                padding=padding_of(padding_same),
                                bias_attr=False)
        self.conv3 = ConvBN(channels, channels * 4, 1, bias_attr=False)
        self.downsample = downsample
        if downsample:
            self.conv_down = ConvBN(in_channels, channels * 4, 1,
                                    bias_attr=False)
        self.has_se = has_se
        if has_se:
            self.se = SELayer(channels * 4)

    def forward(self, x):
        y = self.conv3(self.conv2(self.conv1(x)))
        if self.has_se:
            y = self.se(y)
        shortcut = self.conv_down(x) if self.downsample else x
        return F.relu(y + shortcut)


class BasicBlock(nn.Layer):
    """3x3 [-> polarized self-attention ``deattn``] -> 3x3 [-> SE], plus the
    identity (a branch keeps its channels)."""

    def __init__(self, channels, has_se=False, padding_same=True,
                 use_psa=False):
        super().__init__()
        padding = padding_of(padding_same)
        self.conv1 = ConvBNReLU(channels, channels, 3, padding=padding,
                                bias_attr=False)
        self.deattn = PolarizedSelfAttentionModule(channels, channels) \
            if use_psa else nn.Identity()
        self.conv2 = ConvBN(channels, channels, 3, padding=padding,
                            bias_attr=False)
        self.has_se = has_se
        if has_se:
            self.se = SELayer(channels)

    def forward(self, x):
        y = self.conv2(self.deattn(self.conv1(x)))
        if self.has_se:
            y = self.se(y)
        return F.relu(y + x)


class Layer1(nn.Layer):
    """Stage 1: ``num_blocks`` bottlenecks at 1/4 resolution (PaddleSeg's
    ``la1``, blocks ``bb_<name>_<i>``); outputs ``4 * channels``."""

    def __init__(self, in_channels, channels, num_blocks, has_se=False,
                 name='layer2', padding_same=True):
        super().__init__()
        self.blocks = []
        for i in range(num_blocks):
            self.blocks.append(self.add_sublayer(
                'bb_{}_{}'.format(name, i + 1),
                BottleneckBlock(in_channels if i == 0 else channels * 4,
                                channels, has_se, downsample=i == 0,
                                padding_same=padding_same)))

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x


class TransitionLayer(nn.Layer):
    """From a stage's branches to the next stage's: a 3x3 ConvBNReLU where a
    branch changes its channels, none where it keeps them, and a new lowest
    branch by a stride-2 3x3 ConvBNReLU from the last input."""

    def __init__(self, in_channels, out_channels, name, padding_same=True):
        super().__init__()
        self.convs = []
        for i, out_ch in enumerate(out_channels):
            new_branch = i >= len(in_channels)
            conv = None
            if new_branch or in_channels[i] != out_ch:
                conv = self.add_sublayer(
                    'transition_{}_layer_{}'.format(name, i + 1),
                    ConvBNReLU(in_channels[-1] if new_branch else
                               in_channels[i], out_ch, 3,
                               padding=padding_of(padding_same),
                               stride=2 if new_branch else 1,
                               bias_attr=False))
            self.convs.append(conv)

    def forward(self, x):
        outs = []
        for i, conv in enumerate(self.convs):
            source = x[min(i, len(x) - 1)]
            outs.append(source if conv is None else conv(source))
        return outs


class FuseLayers(nn.Layer):
    """Every output branch i sums all inputs brought to its resolution and
    channels, then ReLU: a higher-resolution input j < i through a chain of
    i - j stride-2 3x3 convs (ConvBNReLU keeping j's channels, the last a
    ConvBN to i's), a lower one j > i by a 1x1 ConvBN and bilinear upsampling.
    """

    def __init__(self, channels, name, align_corners=False,
                 padding_same=True):
        super().__init__()
        self.align_corners = align_corners
        padding = padding_of(padding_same)
        n = len(channels)
        self.paths = [[[] for _ in range(n)] for _ in range(n)]
        for i in range(n):
            for j in range(n):
                prefix = 'residual_{}_layer_{}_{}'.format(name, i + 1, j + 1)
                if j > i:
                    self.paths[i][j].append(self.add_sublayer(prefix, ConvBN(
                        channels[j], channels[i], 1, bias_attr=False)))
                for k in range(i - j):
                    last = k == i - j - 1
                    block = ConvBN if last else ConvBNReLU
                    self.paths[i][j].append(self.add_sublayer(
                        '{}_{}'.format(prefix, k + 1), block(
                            channels[j], channels[i] if last else channels[j],
                            3, padding=padding, stride=2, bias_attr=False)))

    def forward(self, x):
        outs = []
        for i, paths in enumerate(self.paths):
            out = x[i]
            for j, path in enumerate(paths):
                if j == i:
                    continue
                y = x[j]
                for layer in path:
                    y = layer(y)
                if j > i:
                    y = resize_bilinear(y, spatial_size(x[i]),
                                        self.align_corners)
                out = out + y
            outs.append(F.relu(out))
        return outs


class HighResolutionModule(nn.Layer):
    """Parallel branches of basic blocks (``branches_func``), then the fuse
    layers (``fuse_func``)."""

    def __init__(self, channels, num_blocks, name, has_se=False,
                 align_corners=False, padding_same=True, use_psa=False):
        super().__init__()
        self.branches_func = Branches(channels, num_blocks, name, has_se,
                                      padding_same, use_psa)
        self.fuse_func = FuseLayers(channels, name, align_corners,
                                    padding_same)

    def forward(self, x):
        return self.fuse_func(self.branches_func(x))


class Branches(nn.Layer):
    """Branch b: ``num_blocks[b]`` basic blocks at its channels
    (``bb_<name>_branch_layer_<b>_<k>``)."""

    def __init__(self, channels, num_blocks, name, has_se=False,
                 padding_same=True, use_psa=False):
        super().__init__()
        self.branches = []
        for b, (ch, blocks) in enumerate(zip(channels, num_blocks)):
            self.branches.append([self.add_sublayer(
                'bb_{}_branch_layer_{}_{}'.format(name, b + 1, k + 1),
                BasicBlock(ch, has_se, padding_same, use_psa))
                for k in range(blocks)])

    def forward(self, x):
        outs = []
        for y, blocks in zip(x, self.branches):
            for block in blocks:
                y = block(y)
            outs.append(y)
        return outs


class Stage(nn.Layer):
    """``num_modules`` high-resolution modules in a row (``stage_<name>_<m>``),
    each fusing into all branches (HRNetV2)."""

    def __init__(self, channels, num_modules, num_blocks, name, has_se=False,
                 align_corners=False, padding_same=True, use_psa=False):
        super().__init__()
        self.hr_modules = [self.add_sublayer(
            'stage_{}_{}'.format(name, m + 1), HighResolutionModule(
                channels, num_blocks, '{}_{}'.format(name, m + 1), has_se,
                align_corners, padding_same, use_psa))
            for m in range(num_modules)]

    def forward(self, x):
        for module in self.hr_modules:
            x = module(x)
        return x
