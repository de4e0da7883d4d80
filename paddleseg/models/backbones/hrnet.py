"""HRNet backbones (HRNetV2: Wang et al., "Deep High-Resolution Representation
Learning for Visual Recognition", TPAMI 2020) in PaddleSeg 2.8's form.

A stem of two stride-2 convs (1/4 resolution), a bottleneck stage, then three
stages of 2, 3 and 4 parallel branches (each half the resolution and twice
the channels of the one above) that repeatedly exchange information. The
output is a one-element list: the four branches upsampled to the first one's
size and concatenated (``feat_channels``: 15C for HRNet_W<C>; heads use
``backbone_indices: [0]``).

Constructor arguments, defaults and parameter names are PaddleSeg's, so its
configs and ImageNet/Cityscapes checkpoints load unchanged. The registered
variants differ only in their stage settings, one table (``_STAGES``) here.
``padding_same`` is PaddleSeg's: True pads stride-2 convs the TF way
(``'same'``: 0 before, 1 after on even sizes), False pads 1 on both sides as
PyTorch does, which weights converted from PyTorch/NVIDIA HRNets need.
"""

import paddle
import paddle.nn as nn

from paddleseg.cvlibs import manager
from paddleseg.utils.weights import load_pretrained_model
from ..layers import (ConvBNReLU, init_conv_bn, resize_bilinear,
                      spatial_size)
from .hrnet_blocks import Layer1, Stage, TransitionLayer, padding_of

__all__ = ['HRNet', 'HRNet_W18_Small_V1', 'HRNet_W18_Small_V2', 'HRNet_W18',
           'HRNet_W30', 'HRNet_W32', 'HRNet_W40', 'HRNet_W44', 'HRNet_W48',
           'HRNet_W60', 'HRNet_W64']


def _check_stage(stage, num_modules, num_blocks, num_channels):
    """Stage s has s branches: one block count and one width for each."""
    if int(num_modules) < 1:
        raise ValueError('HRNet: stage{}_num_modules must be at least 1, got '
                         '{}.'.format(stage, num_modules))
    for what, values in (('num_blocks', num_blocks),
                         ('num_channels', num_channels)):
        if len(values) != stage:
            raise ValueError(
                'HRNet: stage {} has {} branch(es), so stage{}_{} needs {} '
                'value(s), got {}.'.format(stage, stage, stage, what, stage,
                                           list(values)))


class HRNet(nn.Layer):
    """HRNetV2 with the stage settings given.

    Args:
        in_channels (int): Image channels.
        pretrained (str, optional): Path or URL of backbone weights
            (PaddleSeg's ``hrnet_w18_ssld.tar.gz`` ...), loaded after
            initialisation.
        stage1_num_modules (int): Modules of stage 1 (PaddleSeg builds one
            whatever the value; kept for its signature).
        stage1_num_blocks (tuple): Bottlenecks of stage 1 (one value).
        stage1_num_channels (tuple): Bottleneck width of stage 1 (it outputs
            4x that).
        stage2_num_modules, stage3_num_modules, stage4_num_modules (int):
            High-resolution modules of stages 2-4.
        stage2_num_blocks, stage3_num_blocks, stage4_num_blocks (tuple): Basic
            blocks per branch (2, 3 and 4 values).
        stage2_num_channels, stage3_num_channels, stage4_num_channels (tuple):
            Channels per branch (2, 3 and 4 values).
        has_se (bool): Squeeze-and-excitation in every block.
        align_corners (bool): Of every bilinear upsampling (fuse layers, final
            concatenation). PaddleSeg: False for even crop sizes (1024x512),
            True for 769x769.
        padding_same (bool): ``'same'`` (True) or 1 (False) as the padding of
            the 3x3 convs; only the stride-2 ones compute differently.
        use_psa (bool): Polarized self-attention in every basic block.
        conv_init (str): ``'normal'`` (PaddleSeg's normal(0, 0.001), also of
            the attention modules) or ``'kaiming'`` (for training from
            scratch), see :func:`paddleseg.models.layers.init_conv_bn`.
    """

    def __init__(self, in_channels=3, pretrained=None, stage1_num_modules=1,
                 stage1_num_blocks=(4, ), stage1_num_channels=(64, ),
                 stage2_num_modules=1, stage2_num_blocks=(4, 4),
                 stage2_num_channels=(18, 36), stage3_num_modules=4,
                 stage3_num_blocks=(4, 4, 4),
                 stage3_num_channels=(18, 36, 72), stage4_num_modules=3,
                 stage4_num_blocks=(4, 4, 4, 4),
                 stage4_num_channels=(18, 36, 72, 144), has_se=False,
                 align_corners=False, padding_same=True, use_psa=False,
                 conv_init='normal'):
        super().__init__()
        stages = [(stage1_num_modules, stage1_num_blocks, stage1_num_channels),
                  (stage2_num_modules, stage2_num_blocks, stage2_num_channels),
                  (stage3_num_modules, stage3_num_blocks, stage3_num_channels),
                  (stage4_num_modules, stage4_num_blocks, stage4_num_channels)]
        for s, settings in enumerate(stages, 1):
            _check_stage(s, *settings)
        self.align_corners = align_corners
        self.feat_channels = [sum(stage4_num_channels)]
        padding = padding_of(padding_same)
        self.conv_layer1_1 = ConvBNReLU(in_channels, 64, 3, padding=padding,
                                        stride=2, bias_attr=False)
        self.conv_layer1_2 = ConvBNReLU(64, 64, 3, padding=padding, stride=2,
                                        bias_attr=False)
        self.la1 = Layer1(64, stage1_num_channels[0], stage1_num_blocks[0],
                          has_se, 'layer2', padding_same)
        # tr1, st2, tr2, st3, tr3, st4 (PaddleSeg's attribute names).
        self.transitions, self.stages = [], []
        previous = [stage1_num_channels[0] * 4]
        for s, (modules, blocks, channels) in enumerate(stages[1:], 2):
            self.transitions.append(self.add_sublayer(
                'tr{}'.format(s - 1), TransitionLayer(
                    previous, channels, 'tr{}'.format(s - 1), padding_same)))
            self.stages.append(self.add_sublayer('st{}'.format(s), Stage(
                channels, modules, blocks, 'st{}'.format(s), has_se,
                align_corners, padding_same, use_psa)))
            previous = channels
        init_conv_bn(self, conv_init)
        self.pretrained = pretrained
        if pretrained:
            load_pretrained_model(self, pretrained)

    def forward(self, x):
        branches = [self.la1(self.conv_layer1_2(self.conv_layer1_1(x)))]
        for transition, stage in zip(self.transitions, self.stages):
            branches = stage(transition(branches))
        size = spatial_size(branches[0])
        return [paddle.concat([branches[0]] + [
            resize_bilinear(b, size, self.align_corners)
            for b in branches[1:]], axis=1)]


# Stage settings of the registered variants, stages 1 to 4, each
# (num_modules, num_blocks per branch, num_channels per branch).
def _wide(c):
    """HRNet_W<c>: branches of c, 2c, 4c, 8c channels, 4 blocks each."""
    return ((1, (4, ), (64, )), (1, (4, 4), (c, 2 * c)),
            (4, (4, ) * 3, (c, 2 * c, 4 * c)),
            (3, (4, ) * 4, (c, 2 * c, 4 * c, 8 * c)))


_STAGES = {
    'HRNet_W18_Small_V1': ((1, (1, ), (32, )), (1, (2, 2), (16, 32)),
                           (1, (2, ) * 3, (16, 32, 64)),
                           (1, (2, ) * 4, (16, 32, 64, 128))),
    'HRNet_W18_Small_V2': ((1, (2, ), (64, )), (1, (2, 2), (18, 36)),
                           (3, (2, ) * 3, (18, 36, 72)),
                           (2, (2, ) * 4, (18, 36, 72, 144))),
}
_STAGES.update({'HRNet_W{}'.format(c): _wide(c)
                for c in (18, 30, 32, 40, 44, 48, 60, 64)})


def _stage_kwargs(stages):
    """``stage<s>_num_modules/_num_blocks/_num_channels`` of a table row."""
    kwargs = {}
    for s, (modules, blocks, channels) in enumerate(stages, 1):
        kwargs['stage{}_num_modules'.format(s)] = modules
        kwargs['stage{}_num_blocks'.format(s)] = blocks
        kwargs['stage{}_num_channels'.format(s)] = channels
    return kwargs


def _variant(name):
    """Register the factory of variant ``name`` of ``_STAGES``.

    The factory spells out the arguments a config may set (PaddleSeg's
    factories take ``**kwargs`` and fix the stage settings), so that the config
    checker, which reads ``inspect.signature``, rejects a misspelt key.
    """
    stage_kwargs = _stage_kwargs(_STAGES[name])

    def factory(in_channels=3, pretrained=None, has_se=False,
                align_corners=False, padding_same=True, use_psa=False,
                conv_init='normal'):
        return HRNet(in_channels=in_channels, pretrained=pretrained,
                     has_se=has_se, align_corners=align_corners,
                     padding_same=padding_same, use_psa=use_psa,
                     conv_init=conv_init, **stage_kwargs)

    widths = _STAGES[name][3][2]
    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = ('{}: branches of {} channels, {} output channels. '
                       'Arguments as :class:`HRNet`.'.format(
                           name, '/'.join(map(str, widths)), sum(widths)))
    return manager.BACKBONES.add_component(factory)


HRNet_W18_Small_V1 = _variant('HRNet_W18_Small_V1')
HRNet_W18_Small_V2 = _variant('HRNet_W18_Small_V2')
HRNet_W18 = _variant('HRNet_W18')
HRNet_W30 = _variant('HRNet_W30')
HRNet_W32 = _variant('HRNet_W32')
HRNet_W40 = _variant('HRNet_W40')
HRNet_W44 = _variant('HRNet_W44')
HRNet_W48 = _variant('HRNet_W48')
HRNet_W60 = _variant('HRNet_W60')
HRNet_W64 = _variant('HRNet_W64')
