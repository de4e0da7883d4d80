"""RMILoss: against an independent numpy implementation of the formula,
against golden values from PaddleSeg's code, and on the degenerate batches a
training run produces (finite values, finite gradients, no exception)."""

import math

import numpy as np
import paddle
import pytest

from paddleseg.models.losses import RMILoss
from paddleseg.models.losses.rmi_loss import floored_cholesky

ALPHA = 5e-4


def inputs(n, c, h, w, seed):
    rng = np.random.RandomState(seed)
    logit = (2 * rng.randn(n, c, h, w)).astype('float32')
    label = rng.randint(0, c, (n, h, w)).astype('int64')
    label[:, :2, :3] = 255
    return logit, label


def np_pool(x, k, s, way):
    """PaddleSeg's downsampling of [N, C, H, W] (padding k // 2; average pool
    over the unpadded pixels only, Paddle's ``exclusive=True``)."""
    if s <= 1:
        return x
    pad = k // 2
    n, c, h, w = x.shape
    oh, ow = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            y0, x0 = max(i * s - pad, 0), max(j * s - pad, 0)
            y1, x1 = min(i * s - pad + k, h), min(j * s - pad + k, w)
            win = x[:, :, y0:y1, x0:x1]
            out[:, :, i, j] = win.max((2, 3)) if way == 0 else win.mean(
                (2, 3))
    return out


def np_rmi(logit, label, c, radius=3, pool=3, way=0, ignore=255):
    """The RMI formula in float64 numpy, with the references' explicit
    inverse and Cholesky log-determinant."""
    valid = label != ignore
    onehot = np.eye(c)[np.where(valid, label, 0)].transpose(0, 3, 1, 2)
    onehot = onehot * valid[:, None]
    probs = 1 / (1 + np.exp(-logit.astype('float64'))) * valid[:, None] + 1e-6
    onehot, probs = np_pool(onehot, pool, pool, way), np_pool(probs, pool,
                                                             pool, way)
    h, w = onehot.shape[2] - radius + 1, onehot.shape[3] - radius + 1

    def vectors(x):
        v = np.stack([x[:, :, a:a + h, b:b + w] for a in range(radius)
                      for b in range(radius)], axis=2)
        v = v.reshape(v.shape[:3] + (-1, ))
        return v - v.mean(-1, keepdims=True)

    la, pr = vectors(onehot), vectors(probs)
    eye = np.eye(radius * radius)
    t = lambda m: m.swapaxes(-1, -2)  # noqa: E731
    cond = la @ t(la) - la @ t(pr) @ np.linalg.inv(pr @ t(pr) + ALPHA *
                                                   eye) @ pr @ t(la)
    chol = np.linalg.cholesky(cond + ALPHA * eye)
    log_det = 2 * np.log(np.diagonal(chol, axis1=-2, axis2=-1) + 1e-8).sum(-1)
    return (0.5 * log_det).mean(0).sum() / radius**2


# (n, c, h, w, seed), RMILoss arguments, PaddleSeg v2.8.0's
# paddleseg/models/losses/rmi_loss.py on `inputs(...)` (run once on Paddle
# 3.3.1 CPU, with the two bool-mask `.astype('float32')` casts develop has).
CASES = [
    ((2, 3, 12, 13, 0), {}, -9.953306198120117),
    ((2, 4, 17, 23, 1), {'rmi_pool_way': 1}, -3.0830864906311035),
    ((1, 3, 16, 20, 2), {'rmi_pool_way': 2}, -6.189282417297363),
    ((2, 2, 9, 11, 3), {'rmi_radius': 2, 'rmi_pool_size': 1,
                        'rmi_pool_stride': 1}, 2.8983075618743896),
    ((2, 19, 64, 128, 4), {}, 49.83549499511719),
]


@pytest.mark.parametrize('args, kwargs, golden', CASES)
def test_rmi_matches_paddleseg(args, kwargs, golden):
    logit, label = inputs(*args)
    loss = RMILoss(num_classes=args[1], **kwargs)
    value = loss(paddle.to_tensor(logit), paddle.to_tensor(label)).item()
    assert value == pytest.approx(golden, rel=1e-6, abs=1e-5)


@pytest.mark.parametrize('args, kwargs', [c[:2] for c in CASES[:4]
                                          if c[1].get('rmi_pool_way') != 2])
def test_rmi_matches_numpy_formula(args, kwargs):
    logit, label = inputs(*args)
    expected = np_rmi(logit, label, args[1],
                      radius=kwargs.get('rmi_radius', 3),
                      pool=kwargs.get('rmi_pool_stride', 3),
                      way=kwargs.get('rmi_pool_way', 0))
    loss = RMILoss(num_classes=args[1], **kwargs)
    value = loss(paddle.to_tensor(logit), paddle.to_tensor(label)).item()
    assert value == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_rmi_labels_n1hw_and_gradient_finite_and_correct():
    logit, label = inputs(2, 3, 12, 13, 0)
    loss = RMILoss(num_classes=3)
    x = paddle.to_tensor(logit.astype('float64'), stop_gradient=False)
    value = loss(x, paddle.to_tensor(label[:, None]))
    assert value.item() == pytest.approx(CASES[0][2], rel=1e-6)
    value.backward()
    grad = x.grad.numpy()
    assert np.isfinite(grad).all() and np.abs(grad).max() > 0
    # Directional finite difference (the loss runs in float32 inside).
    direction = np.random.RandomState(5).randn(*logit.shape)
    eps = 1e-2
    f = lambda z: loss(paddle.to_tensor((logit + z * direction).astype(  # noqa
        'float32')), paddle.to_tensor(label)).item()
    numeric = (f(eps) - f(-eps)) / (2 * eps)
    assert numeric == pytest.approx((grad * direction).sum(), rel=2e-2)


def saturated_stripes(h, w, c):
    """Logits of +-50 that are exactly right on labels whose class cycles
    along each row: a confident, correct network on a structured map."""
    label = np.tile(np.arange(w) % c, (1, h, 1)).astype('int64')
    onehot = np.eye(c)[label].transpose(0, 3, 1, 2)
    return (50 * (2 * onehot - 1)).astype('float32'), label


def test_rmi_not_positive_definite_batch_needs_the_guard():
    # PaddleSeg's formula (explicit inverse) on this batch gives M + aI a
    # negative eigenvalue (-1.7e-3), so a plain Cholesky fails, as in
    # ZJULearning/RMI#12 and PaddleSeg#3020.
    logit, label = saturated_stripes(256, 512, 3)
    with pytest.raises(np.linalg.LinAlgError):
        np_rmi(logit, label, 3, pool=1)
    loss = RMILoss(num_classes=3, rmi_pool_size=1, rmi_pool_stride=1)
    x = paddle.to_tensor(logit, stop_gradient=False)
    value = loss(x, paddle.to_tensor(label))
    value.backward()
    # Exact value: P = c Y + const, so the eigenvalues of M + aI lie in
    # [a, 2a); the loss is between 3 * 0.5 * log(a) and 3 * 0.5 * log(2a).
    assert 1.5 * math.log(ALPHA) <= value.item() <= 1.5 * math.log(2 * ALPHA)
    assert np.isfinite(x.grad.numpy()).all()


def test_floored_cholesky_on_an_indefinite_matrix():
    m = np.array([[[1.0, 2.0], [2.0, 1.0]], [[4.0, 0.0], [0.0, 9.0]]])
    with pytest.raises(ValueError, match='Cholesky'):
        paddle.linalg.cholesky(paddle.to_tensor(m))
    x = paddle.to_tensor(m, stop_gradient=False)
    chol = floored_cholesky(x, 0.5)
    rebuilt = (chol @ chol.transpose([0, 2, 1])).numpy()
    # First matrix (eigenvalues -1, 3) shifted by 1.5 to (0.5, 4.5); the
    # second, definite, untouched.
    np.testing.assert_allclose(np.linalg.eigvalsh(rebuilt[0]), [0.5, 4.5],
                               atol=1e-12)
    np.testing.assert_allclose(rebuilt[1], m[1], atol=1e-12)
    paddle.log(paddle.diagonal(chol, axis1=-2, axis2=-1)).sum().backward()
    assert np.isfinite(x.grad.numpy()).all()


H, W = 24, 30
_RNG = np.random.RandomState(7)
_LABEL = _RNG.randint(0, 3, (2, H, W))
_ONEHOT = np.eye(3)[_LABEL].transpose(0, 3, 1, 2)
_EMPTY = 3 * math.log(math.sqrt(ALPHA) + 1e-8)  # zero covariances
DEGENERATE = {
    # name: (logit, label, RMILoss kwargs, expected value or None)
    'all_ignored': (_RNG.randn(2, 3, H, W), np.full((2, H, W), 255), {},
                    _EMPTY),
    'one_class': (_RNG.randn(2, 3, H, W), np.zeros((2, H, W)), {}, None),
    'saturated_right': (50 * (2 * _ONEHOT - 1), _LABEL, {}, None),
    'saturated_wrong': (-50 * (2 * _ONEHOT - 1), _LABEL, {}, None),
    'constant_logits': (np.zeros((2, 3, H, W)), _LABEL, {}, None),
    'class_absent': (_RNG.randn(2, 3, H, W), np.minimum(_LABEL, 1), {}, None),
    'smaller_than_pool': (_RNG.randn(2, 3, 2, 2), _LABEL[:, :2, :2], {},
                          _EMPTY),
    'smaller_than_radius': (_RNG.randn(2, 3, 2, 5), _LABEL[:, :2, :5],
                            {'rmi_pool_size': 1, 'rmi_pool_stride': 1},
                            _EMPTY),
    'one_window': (_RNG.randn(2, 3, 7, 7), _LABEL[:, :7, :7], {}, _EMPTY),
    'interpolate_to_nothing': (_RNG.randn(2, 3, 2, 8), _LABEL[:, :2, :8],
                               {'rmi_pool_way': 2}, _EMPTY),
}


@pytest.mark.parametrize('name', sorted(DEGENERATE))
def test_rmi_degenerate_batches_finite(name):
    logit, label, kwargs, expected = DEGENERATE[name]
    loss = RMILoss(num_classes=3, **kwargs)
    x = paddle.to_tensor(logit.astype('float32'), stop_gradient=False)
    value = loss(x, paddle.to_tensor(label.astype('int64')))
    value.backward()
    assert value.shape == [] and math.isfinite(value.item())
    assert x.grad is not None and np.isfinite(x.grad.numpy()).all()
    if expected is not None:
        assert value.item() == pytest.approx(expected, rel=1e-6)
    if kwargs.get('rmi_pool_stride', 3) == 3 and logit.shape[2] >= 7:
        ref = np_rmi(logit, label.astype('int64'), 3)
        assert value.item() == pytest.approx(ref, rel=1e-4, abs=1e-4)


def test_rmi_nan_logits_give_nan_not_an_exception():
    logit = paddle.full([1, 3, 12, 12], float('nan'))
    value = RMILoss(num_classes=3)(logit, paddle.zeros([1, 12, 12], 'int64'))
    assert math.isnan(value.item())


def test_rmi_channel_mismatch_and_bad_arguments():
    logit, label = inputs(1, 2, 12, 12, 0)
    with pytest.raises(ValueError, match=r'num_classes=19 but the logits '
                       r'have 2 channels'):
        RMILoss()(paddle.to_tensor(logit), paddle.to_tensor(label))
    with pytest.raises(ValueError, match='rmi_radius'):
        RMILoss(rmi_radius=0)
    with pytest.raises(ValueError, match='rmi_pool_way'):
        RMILoss(rmi_pool_way=3)
    with pytest.raises(ValueError, match=r'rmi_pool_size \(3\) must equal'):
        RMILoss(rmi_pool_size=3, rmi_pool_stride=2)
