"""ResNet-vd backbones (ResNet18/34/50/101_vd) with dilation for dense
prediction.

"vd" is the ResNet variant with a three-conv stem and an average-pooled
shortcut on down-sampling blocks (He et al., "Bag of Tricks", 2019). Stages
after ``output_stride`` stop striding and dilate instead (8: stages 3 and 4
dilated 2 and 4; 16: stage 4 dilated 2); ``multi_grid`` multiplies the
dilations of the last stage's blocks. Parameter names follow PaddleSeg
(``conv1_1``, ``bb_<stage>_<block>.conv0`` ...), so its ImageNet and
Cityscapes checkpoints load unchanged.

``forward`` returns the four stage outputs (strides 4, 8, 16|8, 32|16|8);
``feat_channels`` gives their channels.

``eca_k_size`` (``ECAResNet50_vd``, ``ECAResNet101_vd``) adds efficient
channel attention (``layers.ECALayer``) to every block, on the residual
branch before the addition (after the last conv's batch norm), as ACFNet's
base network does. It only adds ``bb_<stage>_<block>.eca.conv.weight``
(k values per block); every other name and shape is ResNet-vd's, so
ImageNet ResNet-vd weights load into the shared parts (the loader reports
the ECA weights as missing; they start from their initialiser).
"""

import paddle.nn as nn
import paddle.nn.functional as F

from paddleseg.cvlibs import manager
from paddleseg.utils.weights import load_pretrained_model
from ..layers import ECALayer, activation

__all__ = ['ResNet_vd', 'ResNet18_vd', 'ResNet34_vd', 'ResNet50_vd',
           'ResNet101_vd', 'ECAResNet50_vd', 'ECAResNet101_vd']

_DEPTHS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3],
           101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}
_DILATIONS = {8: {2: 2, 3: 4}, 16: {3: 2}, 32: {}}


class ConvBNLayer(nn.Layer):
    """[2x2 average pool ->] conv -> BN [-> act]; the pool is the vd shortcut."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1,
                 dilation=1, groups=1, is_vd_mode=False, act=None):
        super().__init__()
        self.is_vd_mode = is_vd_mode
        self._pool2d_avg = nn.AvgPool2D(kernel_size=2, stride=2, padding=0,
                                        ceil_mode=True)
        self._conv = nn.Conv2D(
            in_channels, out_channels, kernel_size, stride=stride,
            padding=dilation * (kernel_size - 1) // 2, dilation=dilation,
            groups=groups, bias_attr=False,
            weight_attr=nn.initializer.KaimingNormal())
        self._batch_norm = nn.BatchNorm2D(out_channels)
        self._act_op = activation(act)

    def forward(self, x):
        if self.is_vd_mode:
            x = self._pool2d_avg(x)
        return self._act_op(self._batch_norm(self._conv(x)))


class BottleneckBlock(nn.Layer):
    """1x1 -> 3x3 (strided, dilated) -> 1x1 (x4 channels), plus shortcut."""

    expansion = 4

    def __init__(self, in_channels, out_channels, stride, shortcut=True,
                 if_first=False, dilation=1, eca_k_size=None):
        super().__init__()
        self.conv0 = ConvBNLayer(in_channels, out_channels, 1, act='relu')
        self.conv1 = ConvBNLayer(out_channels, out_channels, 3, stride=stride,
                                 dilation=dilation, act='relu')
        self.conv2 = ConvBNLayer(out_channels, out_channels * 4, 1)
        if eca_k_size is not None:
            self.eca = ECALayer(eca_k_size)
        self.shortcut = shortcut
        if not shortcut:
            self.short = ConvBNLayer(
                in_channels, out_channels * 4, 1,
                is_vd_mode=not (if_first or stride == 1))

    def forward(self, x):
        y = self.conv2(self.conv1(self.conv0(x)))
        if hasattr(self, 'eca'):
            y = self.eca(y)
        short = x if self.shortcut else self.short(x)
        return F.relu(short + y)


class BasicBlock(nn.Layer):
    """3x3 (strided, dilated) -> 3x3, plus shortcut."""

    expansion = 1

    def __init__(self, in_channels, out_channels, stride, shortcut=True,
                 if_first=False, dilation=1, eca_k_size=None):
        super().__init__()
        self.conv0 = ConvBNLayer(in_channels, out_channels, 3, stride=stride,
                                 dilation=dilation, act='relu')
        self.conv1 = ConvBNLayer(out_channels, out_channels, 3,
                                 dilation=dilation)
        if eca_k_size is not None:
            self.eca = ECALayer(eca_k_size)
        self.shortcut = shortcut
        if not shortcut:
            self.short = ConvBNLayer(
                in_channels, out_channels, 1,
                is_vd_mode=not (if_first or stride == 1))

    def forward(self, x):
        y = self.conv1(self.conv0(x))
        if hasattr(self, 'eca'):
            y = self.eca(y)
        short = x if self.shortcut else self.short(x)
        return F.relu(short + y)


class ResNet_vd(nn.Layer):
    """ResNet-vd of depth ``layers``.

    Args:
        layers (int): 18, 34, 50, 101 or 152.
        output_stride (int): 8, 16 or 32: the stride of the last stage.
        multi_grid (tuple): Dilation multipliers of the last stage's blocks
            (one per block).
        pretrained (str, optional): Local path or URL of a backbone
            checkpoint (``.pdparams`` or a ``.tar.gz`` holding one).
        in_channels (int): Image channels.
        eca_k_size (int, optional): Add efficient channel attention with
            this (odd) kernel size to every block; None: plain ResNet-vd.
    """

    def __init__(self, layers=50, output_stride=8, multi_grid=(1, 1, 1),
                 pretrained=None, in_channels=3, eca_k_size=None):
        super().__init__()
        if layers not in _DEPTHS:
            raise ValueError('layers must be one of {}, got {}.'.format(
                sorted(_DEPTHS), layers))
        if output_stride not in _DILATIONS:
            raise ValueError('output_stride must be 8, 16 or 32, got {!r}.'
                             .format(output_stride))
        depth = _DEPTHS[layers]
        if multi_grid is not None and len(multi_grid) < depth[3]:
            raise ValueError('multi_grid needs a value for each block of the last '
                             'stage ({}), got {}.'.format(depth[3],
                                                          list(multi_grid)))
        block = BottleneckBlock if layers >= 50 else BasicBlock
        filters = [64, 128, 256, 512]
        self.feat_channels = [f * block.expansion for f in filters]
        dilations = _DILATIONS[output_stride]

        self.conv1_1 = ConvBNLayer(in_channels, 32, 3, stride=2, act='relu')
        self.conv1_2 = ConvBNLayer(32, 32, 3, act='relu')
        self.conv1_3 = ConvBNLayer(32, 64, 3, act='relu')
        self.pool2d_max = nn.MaxPool2D(kernel_size=3, stride=2, padding=1)

        self.stage_list = []
        in_ch = 64
        for stage, num_blocks in enumerate(depth):
            blocks = []
            for i in range(num_blocks):
                dilation = dilations.get(stage, 1)
                if stage == 3 and multi_grid is not None:
                    dilation *= multi_grid[i]
                stride = 2 if i == 0 and stage != 0 and dilation == 1 else 1
                layer = self.add_sublayer(
                    'bb_{}_{}'.format(stage, i),
                    block(in_ch, filters[stage], stride, shortcut=i != 0,
                          if_first=stage == 0 and i == 0, dilation=dilation,
                          eca_k_size=eca_k_size))
                blocks.append(layer)
                in_ch = filters[stage] * block.expansion
            self.stage_list.append(blocks)
        self.pretrained = pretrained
        if pretrained:
            load_pretrained_model(self, pretrained)

    def forward(self, x):
        y = self.pool2d_max(self.conv1_3(self.conv1_2(self.conv1_1(x))))
        feats = []
        for blocks in self.stage_list:
            for layer in blocks:
                y = layer(y)
            feats.append(y)
        return feats


@manager.BACKBONES.add_component
def ResNet18_vd(output_stride=8, multi_grid=(1, 1, 1), pretrained=None,
                in_channels=3):
    """ResNet18-vd (basic blocks; stage channels 64/128/256/512)."""
    return ResNet_vd(18, output_stride, multi_grid, pretrained, in_channels)


@manager.BACKBONES.add_component
def ResNet34_vd(output_stride=8, multi_grid=(1, 1, 1), pretrained=None,
                in_channels=3):
    """ResNet34-vd (basic blocks; stage channels 64/128/256/512)."""
    return ResNet_vd(34, output_stride, multi_grid, pretrained, in_channels)


@manager.BACKBONES.add_component
def ResNet50_vd(output_stride=8, multi_grid=(1, 1, 1), pretrained=None,
                in_channels=3):
    """ResNet50-vd (bottlenecks; stage channels 256/512/1024/2048)."""
    return ResNet_vd(50, output_stride, multi_grid, pretrained, in_channels)


@manager.BACKBONES.add_component
def ResNet101_vd(output_stride=8, multi_grid=(1, 1, 1), pretrained=None,
                 in_channels=3):
    """ResNet101-vd (bottlenecks; stage channels 256/512/1024/2048)."""
    return ResNet_vd(101, output_stride, multi_grid, pretrained, in_channels)


@manager.BACKBONES.add_component
def ECAResNet50_vd(output_stride=8, multi_grid=(1, 1, 1), pretrained=None,
                   in_channels=3, eca_k_size=3):
    """ResNet50-vd with efficient channel attention in every bottleneck
    (ResNet50_vd's names plus ``*.eca.conv.weight``)."""
    return ResNet_vd(50, output_stride, multi_grid, pretrained, in_channels,
                     eca_k_size)


@manager.BACKBONES.add_component
def ECAResNet101_vd(output_stride=8, multi_grid=(1, 1, 1), pretrained=None,
                    in_channels=3, eca_k_size=3):
    """ResNet101-vd with efficient channel attention in every bottleneck
    (ACFNet's "ECA-ResNet101" base network on the vd stem and shortcuts;
    ResNet101_vd's names plus ``*.eca.conv.weight``)."""
    return ResNet_vd(101, output_stride, multi_grid, pretrained, in_channels,
                     eca_k_size)
