"""The oneDNN training convolution: forward and both gradients against
Paddle's conv2d, a model's layers routed through it with their state dict
unchanged, and the fallbacks (no headers, an unknown backend)."""

import copy

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
import pytest

from paddleseg.ops import native, onednn_conv
from paddleseg.utils.errors import ConfigError


@pytest.fixture(scope='module')
def conv_op():
    """The operator, built once per test process; `make install` installs
    the headers, so their absence fails rather than skips."""
    if native.compiler() is None:
        pytest.skip('no C++ compiler: the operator cannot be built')
    assert onednn_conv._missing() is None, onednn_conv._missing()
    assert onednn_conv.load() is not None, onednn_conv._state['error']


def _close(a, b, tol=1e-4):
    """Equal to float rounding, relative to the largest magnitude (a
    gradient that is zero but for rounding, as a conv bias's before batch
    norm, compares in absolute terms)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    scale = max(float(np.abs(a).max()), 1e-3)
    assert np.abs(a - b).max() <= tol * scale, np.abs(a - b).max() / scale


@pytest.mark.parametrize('x_shape,w_shape,stride,pad,dil', [
    ((2, 3, 17, 19), (8, 3, 3, 3), 2, 1, 1),     # a stem: odd sizes
    ((2, 16, 12, 10), (12, 16, 3, 3), 1, 2, 2),  # dilated, as at os8
    ((1, 8, 9, 9), (4, 8, 1, 1), 1, 0, 1),       # 1x1 (not routed)
    ((2, 4, 15, 15), (6, 4, 7, 7), 2, 3, 1),     # 7x7
    ((1, 5, 6, 7), (3, 5, 3, 3), 1, 0, 1),       # no padding
])
def test_forward_and_gradients_match_paddle(conv_op, x_shape, w_shape,
                                            stride, pad, dil):
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal(x_shape).astype('float32')
    w_np = (rng.standard_normal(w_shape) * 0.2).astype('float32')
    out_hw = [(n + 2 * pad - dil * (k - 1) - 1) // stride + 1
              for n, k in zip(x_shape[2:], w_shape[2:])]
    g_np = rng.standard_normal([x_shape[0], w_shape[0]] + out_hw).astype(
        'float32')

    def run(conv):
        x = paddle.to_tensor(x_np, stop_gradient=False)
        w = paddle.to_tensor(w_np, stop_gradient=False)
        y = conv(x, w)
        paddle.autograd.backward([y], [paddle.to_tensor(g_np)])
        return y.numpy(), x.grad.numpy(), w.grad.numpy()

    ours = run(lambda x, w: onednn_conv.conv2d(x, w, [stride] * 2,
                                               [pad] * 2, [dil] * 2))
    paddles = run(lambda x, w: F.conv2d(x, w, stride=stride, padding=pad,
                                        dilation=dil))
    for a, b in zip(ours, paddles):
        _close(a, b)


def _model():
    return nn.Sequential(
        nn.Conv2D(3, 8, 3, padding=1),                       # routed, bias
        nn.BatchNorm2D(8), nn.ReLU(),
        nn.Conv2D(8, 8, 3, stride=2, padding=2, dilation=2,
                  bias_attr=False),                          # routed
        nn.Conv2D(8, 8, 3, padding='SAME'),                  # kept: SAME
        nn.Conv2D(8, 8, 3, padding=1, groups=2),             # kept: groups
        nn.Conv2D(8, 4, 1))                                  # kept: 1x1


def test_routed_model_keeps_its_state_dict_outputs_and_gradients(conv_op):
    paddle.seed(0)
    plain = _model()
    routed = copy.deepcopy(plain)
    assert onednn_conv.use_onednn_convolutions(routed) == 2
    assert list(routed.state_dict()) == list(plain.state_dict())
    x = paddle.randn([2, 3, 16, 16])
    for model in (plain, routed):
        model.train()
        model(x).square().mean().backward()
    _close(routed(x).numpy(), plain(x).numpy())
    for p, q in zip(plain.parameters(), routed.parameters()):
        if p.stop_gradient:  # batch norm's running statistics
            assert q.grad is None and p.grad is None
            continue
        _close(q.grad.numpy(), p.grad.numpy(), 2e-4)
    with paddle.no_grad():  # evaluation during training
        _close(routed(x).numpy(), plain(x).numpy())


def test_missing_headers_fall_back_with_one_message(monkeypatch):
    monkeypatch.setattr(onednn_conv, '_state',
                        {'module': None, 'error': None, 'tried': False})
    monkeypatch.setattr(onednn_conv, 'include_dir', lambda: None)
    messages = []
    monkeypatch.setattr(onednn_conv.logger, 'info',
                        lambda msg, *args: messages.append(msg % args))
    model = _model()
    assert onednn_conv.use_onednn_convolutions(model) == 0
    assert onednn_conv.use_onednn_convolutions(model) == 0
    assert len(messages) == 1
    assert 'pip install --no-deps onednn-devel==2025.0.0' in messages[0]
    assert all('forward' not in vars(l) for l in model.sublayers())


def test_unknown_backend_is_refused(monkeypatch):
    monkeypatch.setenv('PADDLESEG_CONV_BACKEND', 'fast')
    with pytest.raises(ConfigError, match="PADDLESEG_CONV_BACKEND='fast'"):
        onednn_conv.use_onednn_convolutions(_model())
    monkeypatch.setenv('PADDLESEG_CONV_BACKEND', 'paddle')
    assert onednn_conv.use_onednn_convolutions(_model()) == 0
