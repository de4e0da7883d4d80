"""Criss-cross attention as a layer (CCNet): projections, gamma, residual.

The computation itself is ``paddleseg.ops.criss_cross_attention`` (the native
C++/CUDA operator or the pure-Paddle reference); this layer owns the 1x1
query/key/value convolutions, the learnt scale ``gamma`` (initialised to 0, so
a new layer starts as the identity) and the residual. Parameter names are
PaddleSeg's (``q_conv``, ``k_conv``, ``v_conv``, ``gamma``).
"""

import paddle
import paddle.nn as nn

from paddleseg.ops import criss_cross_attention, criss_cross_attention_map

__all__ = ['CrissCrossAttention', 'set_cca_backend', 'export_cca_backend']


class CrissCrossAttention(nn.Layer):
    """out = gamma * CCA(q(x), k(x), v(x)) + x.

    Args:
        in_channels (int): Channels of ``x``; query and key have
            ``in_channels // 8``.
        backend (str): ``"auto"``, ``"native"`` or ``"reference"`` (see
            ``paddleseg.ops.criss_cross_attention``).
    """

    def __init__(self, in_channels, backend='auto'):
        super().__init__()
        if in_channels < 8:
            raise ValueError('CrissCrossAttention needs at least 8 input '
                             'channels (query/key have in_channels // 8), got '
                             '{}.'.format(in_channels))
        self.backend = backend
        self.q_conv = nn.Conv2D(in_channels, in_channels // 8, 1)
        self.k_conv = nn.Conv2D(in_channels, in_channels // 8, 1)
        self.v_conv = nn.Conv2D(in_channels, in_channels, 1)
        self.gamma = self.create_parameter(
            shape=[1], default_initializer=nn.initializer.Constant(0.0))

    def forward(self, x):
        out = criss_cross_attention(self.q_conv(x), self.k_conv(x),
                                    self.v_conv(x), backend=self.backend)
        return self.gamma * out + x

    @paddle.no_grad()
    def attention_map(self, x):
        """(N, H, W, H + W) weights of every pixel over its column and row
        (see ``paddleseg.ops.criss_cross_attention_map``)."""
        return criss_cross_attention_map(self.q_conv(x), self.k_conv(x))


def set_cca_backend(model, backend):
    """Set the backend of every criss-cross attention layer in ``model``;
    return how many there are."""
    layers = [l for l in model.sublayers()
              if isinstance(l, CrissCrossAttention)]
    for layer in layers:
        layer.backend = backend
    return len(layers)


def export_cca_backend(device='cpu'):
    """The criss-cross attention backend an exported graph should hold when
    the user asks for ``auto``: the one measured faster in Paddle Inference
    on ``device`` (``benchmarks/results/inference.md``).

    On CPU with oneDNN the pure-Paddle path (batched matmuls, which oneDNN
    runs) is as fast as the native operator or faster, and the model then
    needs no operator library where it is deployed. On GPU nothing has been
    measured yet (the CUDA kernels have not run on a GPU), so the pure-Paddle
    path too, as the operator's own ``auto`` does there; ``--cca_backend
    native`` exports the operator on request. ``device`` is kept for when a
    measurement says otherwise.
    """
    return 'reference'
