"""The static-graph forms that exported models use (they keep oneDNN
working in Paddle Inference) compute what the eager kernels compute."""

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from paddleseg.models.layers import (LeakyReLU, resize_bilinear,
                                     resize_by_factor, spatial_size)
from paddleseg.ops import criss_cross_attention_reference


class _Resize(paddle.nn.Layer):
    def __init__(self, size, align_corners):
        super().__init__()
        self.size, self.align_corners = size, align_corners

    def forward(self, x, like):
        size = self.size or spatial_size(like)
        return resize_bilinear(x, size, self.align_corners)


@pytest.mark.parametrize('align_corners', [False, True])
@pytest.mark.parametrize('in_hw,out_hw', [((8, 16), (64, 128)),  # up 8x
                                          ((7, 5), (29, 31)),    # odd ratios
                                          ((16, 16), (8, 6)),    # down
                                          ((1, 3), (5, 7)),      # one row
                                          ((5, 6), (1, 3)),      # to one row
                                          ((5, 5), (5, 5))])     # same size
def test_static_resize_equals_interpolate(in_hw, out_hw, align_corners):
    x = paddle.to_tensor(np.random.RandomState(0).randn(2, 3, *in_hw)
                         .astype('float32'))
    like = paddle.zeros([1, 1, *out_hw])
    expected = F.interpolate(x, out_hw, mode='bilinear',
                             align_corners=align_corners).numpy()
    for size in (None, list(out_hw)):  # from a tensor's shape, or ints
        layer = _Resize(size, align_corners)
        np.testing.assert_allclose(layer(x, like).numpy(), expected)
        spec = [paddle.static.InputSpec([None, 3, None, None], 'float32'),
                paddle.static.InputSpec([None, 1, None, None], 'float32')]
        static = paddle.jit.to_static(layer, input_spec=spec,
                                      full_graph=True)
        np.testing.assert_allclose(static(x, like).numpy(), expected,
                                   rtol=1e-5, atol=1e-5)


class _ResizeByFactor(paddle.nn.Layer):
    def __init__(self, factor, align_corners):
        super().__init__()
        self.factor, self.align_corners = factor, align_corners

    def forward(self, x):
        return resize_by_factor(x, self.factor, self.align_corners)


@pytest.mark.parametrize('align_corners', [False, True])
@pytest.mark.parametrize('factor', [0.5, 0.75, 1.5, 2.0, 0.3, 1 / 3, 0.7])
def test_static_resize_by_factor_equals_interpolate(factor, align_corners):
    layer = _ResizeByFactor(factor, align_corners)
    static = paddle.jit.to_static(  # converts a copy; ``layer`` stays eager
        _ResizeByFactor(factor, align_corners), full_graph=True, input_spec=[
        paddle.static.InputSpec([None, 3, None, None], 'float32')])
    for hw in ((57, 71), (10, 20), (64, 96), (4, 5)):
        x = paddle.to_tensor(np.random.RandomState(0).randn(2, 3, *hw)
                             .astype('float32'))
        expected = F.interpolate(x, scale_factor=factor, mode='bilinear',
                                 align_corners=align_corners).numpy()
        assert expected.shape[2:] == tuple(int(s * np.float32(factor))
                                           for s in hw)
        np.testing.assert_allclose(layer(x).numpy(), expected)
        np.testing.assert_allclose(static(x).numpy(), expected, rtol=1e-5,
                                   atol=1e-5)
    program = str(static.forward.concrete_program.main_program)
    assert 'interp' not in program


def test_resize_by_factor_steps_by_the_inverse_factor():
    # 57 rows at 0.5: 28 rows whose centres step by 2 source rows (Paddle's
    # kernel with a scale factor), not by 57 / 28 as a resize to 28 rows.
    x = paddle.arange(57, dtype='float32').reshape([1, 1, 57, 1]).tile(
        [1, 1, 1, 2])
    rows = resize_by_factor(x, 0.5).numpy()[0, 0, :, 0]
    np.testing.assert_allclose(rows, 2 * np.arange(28) + 0.5)
    to_size = resize_bilinear(x, [28, 1]).numpy()[0, 0, :, 0]
    assert np.abs(to_size - rows).max() > 0.5


def test_static_leaky_relu_equals_kernel():
    layer = LeakyReLU(0.01)
    x = paddle.to_tensor(np.linspace(-3, 3, 61, dtype='float32')
                         .reshape(1, 1, 61, 1))
    np.testing.assert_allclose(layer(x).numpy(),
                               F.leaky_relu(x, 0.01).numpy())
    static = paddle.jit.to_static(layer, full_graph=True, input_spec=[
        paddle.static.InputSpec([None, 1, None, None], 'float32')])
    expected = F.leaky_relu(x, 0.01).numpy()
    np.testing.assert_allclose(static(x).numpy(), expected, rtol=1e-6)
    program = str(static.forward.concrete_program.main_program)
    assert 'leaky_relu' not in program and 'maximum' in program


class _Attention(paddle.nn.Layer):
    def forward(self, query, key, value):
        return criss_cross_attention_reference(query, key, value)


@pytest.mark.parametrize('shape', [(2, 3, 5, 6, 7), (1, 2, 4, 9, 1)])
def test_static_attention_reference_equals_eager(shape):
    # Static graphs compute the reference with batched matmuls, eager mode
    # with einsums (each the faster where it runs).
    b, cq, c, h, w = shape
    rng = np.random.RandomState(0)
    q, k, v = (paddle.to_tensor(rng.randn(*s).astype('float32'))
               for s in ((b, cq, h, w), (b, cq, h, w), (b, c, h, w)))
    layer = _Attention()
    expected = layer(q, k, v).numpy()
    spec = [paddle.static.InputSpec([None, n, None, None], 'float32')
            for n in (cq, cq, c)]
    static = paddle.jit.to_static(layer, input_spec=spec, full_graph=True)
    np.testing.assert_allclose(static(q, k, v).numpy(), expected,
                               rtol=1e-5, atol=1e-5)
    program = str(static.forward.concrete_program.main_program)
    assert 'einsum' not in program and 'matmul' in program
