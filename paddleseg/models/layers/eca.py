"""Efficient channel attention (ECA-Net, Wang et al., CVPR 2020).

Each channel is scaled by ``sigmoid(conv1d_k(mean_hw(x)))``: a global average
pool, a 1-D convolution of kernel ``k`` across neighbouring channels (one
weight vector shared by all channels, no bias) and a sigmoid. It adds ``k``
parameters per block. ACFNet's unofficial port puts one (``k = 3``) in every
bottleneck of its base network ("ECA-ResNet101").

The stock ``nn.AdaptiveAvgPool2D`` and ``nn.Conv1D`` are kept: exported, they
run in Paddle Inference 3.3 with oneDNN on and off and through paddle2onnx
with the eager outputs (measured: largest difference 7e-7 on a (1, 3, 72,
104) input; ``tests/models/test_models_smoke.py`` checks it on every export).
The weight is (1, 1, k), the shape of ECA-Net's ``eca_layer.conv.weight``.
"""

import paddle.nn as nn
import paddle.nn.functional as F

__all__ = ['ECALayer']


class ECALayer(nn.Layer):
    """x * sigmoid(Conv1D_k(AvgPool(x))) across channels.

    Sub-layer names: ``avg_pool``, ``conv`` (weight (1, 1, k), no bias).

    Args:
        k_size (int): Kernel size across channels (odd; 3 in ACFNet's port).
    """

    def __init__(self, k_size=3):
        super().__init__()
        if isinstance(k_size, bool) or not isinstance(k_size, int) or \
                k_size < 1 or k_size % 2 == 0:
            raise ValueError('ECALayer: k_size must be a positive odd int (3 '
                             'in ACFNet\'s base network), got {!r}.'
                             .format(k_size))
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.conv = nn.Conv1D(1, 1, k_size, padding=(k_size - 1) // 2,
                              bias_attr=False)

    def forward(self, x):
        y = self.avg_pool(x).reshape([0, 1, -1])         # (B, 1, C)
        y = self.conv(y).reshape([0, -1, 1, 1])          # (B, C, 1, 1)
        return x * F.sigmoid(y)
