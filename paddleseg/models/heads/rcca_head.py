"""CCNet's recurrent criss-cross attention head (RCCA module)."""

import paddle
import paddle.nn as nn

from ..layers import AuxLayer, ConvBNLeakyReLU, CrissCrossAttention

__all__ = ['RCCAModule']


class RCCAModule(nn.Layer):
    """3x3 conv in -> criss-cross attention ``recurrence`` times (shared
    weights) -> 3x3 conv out -> concat with the input -> classifier.

    Sub-layer names (``conva``, ``cca``, ``convb``, ``out``) are PaddleSeg's.

    Args:
        in_channels (int): Channels of the backbone feature; the attention
            runs on ``in_channels // 4``.
        out_channels (int): Hidden channels of the classifier.
        num_classes (int): Number of classes.
        dropout_prob (float): Dropout before the classifier's 1x1 conv.
        recurrence (int): How many times attention is applied (R); R = 2
            lets every pixel gather context from the whole image.
        backend (str): Criss-cross attention backend (``"auto"``, ``"native"``,
            ``"reference"``).
    """

    def __init__(self, in_channels, out_channels, num_classes,
                 dropout_prob=0.1, recurrence=1, backend='auto'):
        super().__init__()
        inter_channels = in_channels // 4
        self.recurrence = recurrence
        self.conva = ConvBNLeakyReLU(in_channels, inter_channels, 3,
                                     padding=1, bias_attr=False)
        self.cca = CrissCrossAttention(inter_channels, backend=backend)
        self.convb = ConvBNLeakyReLU(inter_channels, inter_channels, 3,
                                     padding=1, bias_attr=False)
        self.out = AuxLayer(in_channels + inter_channels, out_channels,
                            num_classes, dropout_prob=dropout_prob)

    def forward(self, x):
        feat = self.conva(x)
        for _ in range(self.recurrence):
            feat = self.cca(feat)
        return self.out(paddle.concat([x, self.convb(feat)], axis=1))

    @paddle.no_grad()
    def attention_maps(self, x, recurrence=None):
        """The attention weights of each recurrence step, as a list of
        (N, H, W, H + W) tensors (see ``CrissCrossAttention.attention_map``).

        Args:
            x (Tensor): The backbone feature the head takes.
            recurrence (int, optional): Steps to run (default: the head's).
        """
        feat, maps = self.conva(x), []
        for _ in range(recurrence or self.recurrence):
            maps.append(self.cca.attention_map(feat))
            feat = self.cca(feat)
        return maps
