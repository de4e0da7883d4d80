"""Class centers and class attention (``layers/class_attention.py``) against
a float64 numpy reference and finite differences, their guard for an absent
class, the port's form, shape and dtype errors, and static graphs."""

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from paddleseg.models.layers import (class_attention, class_centers,
                                     reference_class_attention)
from paddleseg.ops import OpInputError


def np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_centers(feat, probs):
    """center[b, k, c] = sum_i P[b, k, i] F[b, c, i] / sum_i P[b, k, i]."""
    b, c = feat.shape[:2]
    f = feat.reshape(b, c, -1)
    p = probs.reshape(b, probs.shape[1], -1)
    return np.stack([[[(p[n, k] * f[n, ch]).sum() / p[n, k].sum()
                       for ch in range(c)] for k in range(p.shape[1])]
                     for n in range(b)])


def np_attention(centers, probs):
    """out[b, c, i] = sum_k P[b, k, i] center[b, k, c]."""
    b, k, h, w = probs.shape
    out = np.zeros((b, centers.shape[2], h, w))
    for kk in range(k):
        out += probs[:, kk, None] * centers[:, kk, :, None, None]
    return out


def np_reference(feat, logits):
    """The port's acf_Module without its convolutions."""
    b, c = feat.shape[:2]
    lg = logits.reshape(b, logits.shape[1], -1)
    energy = lg @ feat.reshape(b, c, -1).transpose(0, 2, 1)
    att = np_softmax(energy.max(-1, keepdims=True) - energy, -1)
    return (att.transpose(0, 2, 1) @ lg).reshape(b, c, *feat.shape[2:])


def inputs(shape=(2, 5, 19, 1, 7), seed=0):
    """(features, logits) float64 arrays: (B, C, H, W) and (B, K, H, W)."""
    b, c, k, h, w = shape
    rng = np.random.RandomState(seed)
    return rng.randn(b, c, h, w), 2 * rng.randn(b, k, h, w)


@pytest.mark.parametrize('dtype, tol', [('float64', 1e-12), ('float32', 1e-5)])
@pytest.mark.parametrize('shape', [(2, 5, 19, 1, 7),   # B > 1, H = 1, K = 19
                                   (3, 4, 19, 5, 3),   # H != W
                                   (1, 2, 1, 2, 2)])   # one class
def test_values_equal_the_numpy_reference(shape, dtype, tol):
    feat, logits = inputs(shape)
    probs = np_softmax(logits, 1)
    centers = class_centers(paddle.to_tensor(feat.astype(dtype)),
                            paddle.to_tensor(probs.astype(dtype)))
    assert centers.dtype == getattr(paddle, dtype)
    assert tuple(centers.shape) == (shape[0], shape[2], shape[1])
    expected = np_centers(feat, probs)
    np.testing.assert_allclose(centers.numpy(), expected, rtol=tol, atol=tol)
    out = class_attention(centers, paddle.to_tensor(probs.astype(dtype)))
    assert tuple(out.shape) == feat.shape and out.dtype == centers.dtype
    np.testing.assert_allclose(out.numpy(), np_attention(expected, probs),
                               rtol=tol, atol=tol)


def test_centers_are_class_means_for_one_hot_probabilities():
    # Hand-computed: pixels 0 and 2 are class 0, pixel 1 class 1, class 2
    # absent (its center is 0 by the guard, not 0/0).
    feat = paddle.to_tensor([[[[1.0, 10.0, 3.0]], [[2.0, 20.0, 6.0]]]])
    probs = paddle.to_tensor([[[[1.0, 0.0, 1.0]], [[0.0, 1.0, 0.0]],
                               [[0.0, 0.0, 0.0]]]])
    centers = class_centers(feat, probs)
    np.testing.assert_allclose(centers.numpy(), [[[2.0, 4.0], [10.0, 20.0],
                                                  [0.0, 0.0]]])
    np.testing.assert_allclose(class_attention(centers, probs).numpy(),
                               [[[[2.0, 10.0, 2.0]], [[4.0, 20.0, 4.0]]]])


def _loss(feat, logits, weights):
    probs = F.softmax(logits, axis=1)
    out = class_attention(class_centers(feat, probs), probs)
    return (out * weights).sum()


def test_gradients_equal_finite_differences():
    feat, logits = inputs((2, 3, 19, 1, 4), seed=1)
    weights = paddle.to_tensor(np.random.RandomState(2).randn(2, 3, 1, 4))
    f, lg = (paddle.to_tensor(a, stop_gradient=False) for a in (feat, logits))
    _loss(f, lg, weights).backward()
    for tensor, grad, array in ((f, f.grad, feat), (lg, lg.grad, logits)):
        numeric = np.zeros_like(array)
        for idx in np.ndindex(array.shape):
            values = []
            for step in (1e-6, -1e-6):
                moved = array.copy()
                moved[idx] += step
                args = (moved, logits) if tensor is f else (feat, moved)
                values.append(_loss(*(paddle.to_tensor(a) for a in args),
                                    weights).item())
            numeric[idx] = (values[0] - values[1]) / 2e-6
        np.testing.assert_allclose(grad.numpy(), numeric, rtol=1e-6,
                                   atol=1e-8)


@pytest.mark.parametrize('dtype', ['float32', 'float64'])
def test_absent_class_gives_finite_values_and_gradients(dtype):
    feat, logits = inputs((2, 4, 5, 3, 2))
    probs = np_softmax(logits, 1)
    probs[:, 3] = 0.0  # no pixel can be class 3
    probs /= probs.sum(1, keepdims=True)
    f = paddle.to_tensor(feat.astype(dtype), stop_gradient=False)
    p = paddle.to_tensor(probs.astype(dtype), stop_gradient=False)
    centers = class_centers(f, p)
    np.testing.assert_array_equal(centers.numpy()[:, 3], 0.0)
    present = [0, 1, 2, 4]
    np.testing.assert_allclose(centers.numpy()[:, present],
                               np_centers(feat, probs[:, present]),
                               rtol=1e-5, atol=1e-6)
    class_attention(centers, p).sum().backward()
    assert np.isfinite(f.grad.numpy()).all()
    assert np.isfinite(p.grad.numpy()).all()


@pytest.mark.parametrize('dtype, tol', [('float64', 1e-12), ('float32', 1e-5)])
def test_reference_style_equals_the_port_formula(dtype, tol):
    feat, logits = inputs((2, 6, 19, 1, 5))
    out = reference_class_attention(paddle.to_tensor(feat.astype(dtype)),
                                    paddle.to_tensor(logits.astype(dtype)))
    np.testing.assert_allclose(out.numpy(), np_reference(feat, logits),
                               rtol=tol, atol=tol)


def t(*shape, dtype='float32'):
    return paddle.zeros(shape, dtype)


@pytest.mark.parametrize('call, message', [
    (lambda: class_centers(t(2, 3, 4), t(2, 5, 4, 4)),
     r'class_centers: features must be 4-D \(B, C, H, W\), got shape '
     r'\[2, 3, 4\]; reshape it'),
    (lambda: class_centers(t(2, 3, 4, 4), t(2, 5, 4, 6)),
     r'features \[2, 3, 4, 4\] and probs \[2, 5, 4, 6\] must have the same '
     r'batch size, height and width; resize'),
    (lambda: class_centers(t(1, 3, 4, 4), t(2, 5, 4, 4)), 'same batch size'),
    (lambda: class_centers(t(2, 3, 4, 4, dtype='int64'), t(2, 5, 4, 4)),
     'features has dtype int64, expected float32 or float64; cast it'),
    (lambda: class_centers(t(2, 3, 4, 4), t(2, 5, 4, 4, dtype='float64')),
     'features and probs have dtypes float32, float64; cast them to one'),
    (lambda: class_centers(np.zeros((2, 3, 4, 4)), t(2, 5, 4, 4)),
     'features must be a paddle Tensor, got ndarray'),
    (lambda: class_attention(t(2, 5, 3), t(2, 4, 4, 4)),
     r'centers \[2, 5, 3\] \(B, K, C\) and probs \[2, 4, 4, 4\] \(B, K, H, '
     r'W\) must have the same batch size and number of classes K'),
    (lambda: class_attention(t(2, 5, 3, 1), t(2, 5, 4, 4)),
     r'centers must be 3-D \(B, K, C\)'),
    (lambda: reference_class_attention(t(2, 3, 4, 4), t(2, 5, 2, 4)),
     r'features \[2, 3, 4, 4\] and logits \[2, 5, 2, 4\]'),
])
def test_shape_and_dtype_errors_say_what_to_do(call, message):
    with pytest.raises(OpInputError, match=message):
        call()


class _ACF(paddle.nn.Layer):
    def __init__(self, style):
        super().__init__()
        self.style = style

    def forward(self, feat, logits):
        if self.style == 'reference':
            return reference_class_attention(feat, logits)
        probs = F.softmax(logits, axis=1)
        return class_attention(class_centers(feat, probs), probs)


@pytest.mark.parametrize('style', ['paper', 'reference'])
def test_static_graph_with_dynamic_sizes_equals_eager(style):
    feat, logits = (paddle.to_tensor(a.astype('float32'))
                    for a in inputs((2, 6, 19, 3, 5)))
    layer = _ACF(style)
    expected = layer(feat, logits).numpy()
    spec = [paddle.static.InputSpec([None, 6, None, None], 'float32'),
            paddle.static.InputSpec([None, 19, None, None], 'float32')]
    static = paddle.jit.to_static(layer, input_spec=spec, full_graph=True)
    np.testing.assert_allclose(static(feat, logits).numpy(), expected,
                               rtol=1e-5, atol=1e-6)
    program = str(static.forward.concrete_program.main_program)
    assert 'einsum' not in program and 'matmul' in program
