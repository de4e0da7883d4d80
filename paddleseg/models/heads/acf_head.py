"""ACFNet's heads: the coarse head, the attentional class feature (ACF)
module and the fine head (Zhang et al., ICCV 2019).

Layer shapes follow the unofficial port (zrl4836/ACFNet) on its 2560-channel
ASPP output; dropout rates are the port's. Sub-layer names are this
project's (no PaddleSeg ACFNet exists) and are pinned by
``tests/models/test_acfnet.py``.
"""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..layers import (ConvBNAct, ConvBNReLU, class_attention, class_centers,
                      reference_class_attention)

__all__ = ['ACFCoarseHead', 'ACFModule', 'ACFFineHead', 'ACF_STYLES']

ACF_STYLES = ('paper', 'reference')


class ACFCoarseHead(nn.Layer):
    """1x1 ConvBNReLU -> dropout 0.5 -> 3x3 ConvBNReLU (conv bias, as the
    port) -> dropout 0.1 -> 1x1 classifier.

    Sub-layers: ``reduce``, ``conv``, ``cls``.

    Args:
        in_channels (int): Channels of the ASPP output.
        channels (int): Hidden channels (512 in the port).
        num_classes (int): Number of classes.
    """

    def __init__(self, in_channels, channels, num_classes):
        super().__init__()
        self.reduce = ConvBNReLU(in_channels, channels, 1, bias_attr=False)
        self.dropout1 = nn.Dropout2D(0.5)
        self.conv = ConvBNReLU(channels, channels, 3, padding=1)
        self.dropout2 = nn.Dropout2D(0.1)
        self.cls = nn.Conv2D(channels, num_classes, 1)

    def forward(self, x):
        x = self.conv(self.dropout1(self.reduce(x)))
        return self.cls(self.dropout2(x))


class ACFModule(nn.Layer):
    """Attentional class feature: reduce the features, gather class centers
    with the coarse prediction, give each pixel its mix of them, project.

    ``style='paper'``: ``P = softmax(coarse)`` over classes,
    ``layers.class_centers(F', P)`` then ``layers.class_attention``.
    ``style='reference'``: the port's ``layers.reference_class_attention(F',
    coarse)`` on the raw coarse logits.

    Sub-layers: ``reduce`` (1x1 ConvBNReLU, no conv bias, then dropout 0.2)
    and ``project`` (1x1 conv with bias, no batch norm).

    Args:
        in_channels (int): Channels of the features (the ASPP output).
        channels (int): Channels of the reduced features and of the output.
        style (str): ``'paper'`` or ``'reference'``.
    """

    def __init__(self, in_channels, channels, style='paper'):
        super().__init__()
        if style not in ACF_STYLES:
            raise ValueError('ACFModule: style must be one of {}, got {!r}.'
                             .format(', '.join(ACF_STYLES), style))
        self.style = style
        self.reduce = ConvBNReLU(in_channels, channels, 1, bias_attr=False)
        self.dropout = nn.Dropout2D(0.2)
        self.project = nn.Conv2D(channels, channels, 1)

    def forward(self, x, coarse):
        feat = self.dropout(self.reduce(x))
        if self.style == 'paper':
            probs = F.softmax(coarse, axis=1)
            out = class_attention(class_centers(feat, probs), probs)
        else:
            out = reference_class_attention(feat, coarse)
        return self.project(out)


class ACFFineHead(nn.Layer):
    """concat(ACF output, features) -> 3x3 ConvBN + activation -> dropout
    0.1 -> 1x1 classifier.

    The port's 3x3 conv is followed by ``InPlaceABNSync``, whose default
    activation is leaky ReLU with slope 0.01: ``act_type='leakyrelu'``
    reproduces it (``layers.LeakyReLU``, which oneDNN can run).

    Sub-layers: ``conv`` (no conv bias), ``cls``.

    Args:
        in_channels (int): Channels of the concatenation.
        channels (int): Hidden channels (1024 in the port).
        num_classes (int): Number of classes.
        act_type (str): Activation after the batch norm.
    """

    def __init__(self, in_channels, channels, num_classes,
                 act_type='leakyrelu'):
        super().__init__()
        self.conv = ConvBNAct(in_channels, channels, 3, padding=1,
                              act_type=act_type, bias_attr=False)
        self.dropout = nn.Dropout2D(0.1)
        self.cls = nn.Conv2D(channels, num_classes, 1)

    def forward(self, acf_out, feat):
        x = paddle.concat([acf_out, feat], axis=1)
        return self.cls(self.dropout(self.conv(x)))
