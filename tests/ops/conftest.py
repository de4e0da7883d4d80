"""Fixtures of the operator tests: a NumPy oracle and its inputs (the
native library fixture, `native_op`, is in tests/conftest.py)."""

import numpy as np
import paddle
import pytest


def cca_numpy(q, k, v):
    """Criss-cross attention in float64 NumPy, following PaddleSeg's CCNet
    algorithm literally: column energies plus a -inf diagonal, row energies,
    one softmax over the concatenation, then both aggregations."""
    q, k, v = (np.asarray(x, 'float64') for x in (q, k, v))
    h = q.shape[2]
    e_col = np.einsum('bchw,bciw->bhwi', q, k)
    e_col = e_col + np.diag(np.full(h, -np.inf))[:, None, :]  # [h, 1, i]
    e_row = np.einsum('bchw,bchj->bhwj', q, k)
    e = np.concatenate([e_col, e_row], axis=-1)
    a = np.exp(e - e.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    return (np.einsum('bhwi,bciw->bchw', a[..., :h], v) +
            np.einsum('bhwj,bchj->bchw', a[..., h:], v))


def random_inputs(shape, dtype='float64', seed=0, grad=True):
    """(query, key, value) for shape (B, Cq, C, H, W), scaled so the
    softmax is neither uniform nor one-hot."""
    b, cq, c, h, w = shape
    rng = np.random.RandomState(seed)
    arrays = [rng.randn(b, cq, h, w) * 0.7, rng.randn(b, cq, h, w) * 0.7,
              rng.randn(b, c, h, w)]
    tensors = [paddle.to_tensor(a.astype(dtype)) for a in arrays]
    for t in tensors:
        t.stop_gradient = not grad
    return tensors


@pytest.fixture(scope='session')
def oracle():
    """The NumPy oracle ``oracle(q, k, v)``."""
    return cca_numpy


@pytest.fixture(scope='session')
def inputs():
    """``inputs((B, Cq, C, H, W), dtype='float64', seed=0, grad=True)``."""
    return random_inputs
