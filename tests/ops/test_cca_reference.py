"""The pure-Paddle criss-cross attention: hand-computed values, the PaddleSeg
convention, gradients, static graphs and the input checks of the wrapper."""

import importlib

import numpy as np
import paddle
import pytest

from paddleseg.ops import (OpInputError, criss_cross_attention,
                           criss_cross_attention_map,
                           criss_cross_attention_reference)
from paddleseg.ops.criss_cross_attention import (choose_backend,
                                                 native_supports, native_wins)
from paddleseg.utils.errors import SegError


def test_zero_energies_average_the_cross_once():
    # q = k = 0: every energy is 0, so each pixel takes the plain mean of the
    # H + W - 1 = 3 values on its cross, itself counted once.
    zeros = paddle.zeros([1, 1, 2, 2], 'float64')
    v = paddle.to_tensor([[[[1.0, 2.0], [3.0, 4.0]]]], 'float64')
    out = criss_cross_attention_reference(zeros, zeros, v)
    expected = [[(3 + 1 + 2) / 3, (4 + 1 + 2) / 3],
                [(1 + 3 + 4) / 3, (2 + 3 + 4) / 3]]
    np.testing.assert_allclose(out.numpy()[0, 0], expected, rtol=1e-12)


def test_one_strong_energy_selects_that_position():
    # Pixel (0, 0) has query 10; key is 1 only at (1, 0), its column
    # neighbour, so pixel (0, 0) takes value(1, 0) almost exactly.
    q = paddle.to_tensor([[[[10.0, 0.0], [0.0, 0.0]]]], 'float64')
    k = paddle.to_tensor([[[[0.0, 0.0], [1.0, 0.0]]]], 'float64')
    v = paddle.to_tensor([[[[1.0, 2.0], [3.0, 4.0]]]], 'float64')
    out = criss_cross_attention_reference(q, k, v).numpy()[0, 0]
    w = np.exp(10.0)  # weights e^10 on (1, 0) and 1, 1 on (0, 0), (0, 1)
    assert out[0, 0] == pytest.approx((3 * w + 1 + 2) / (w + 2), rel=1e-12)


@pytest.mark.parametrize('shape', [(2, 3, 4, 5, 7), (1, 2, 3, 1, 6),
                                   (1, 2, 3, 6, 1), (2, 4, 5, 9, 12)])
def test_reference_matches_paddleseg_algorithm(shape, inputs, oracle):
    q, k, v = inputs(shape, grad=False)
    out = criss_cross_attention_reference(q, k, v)
    np.testing.assert_allclose(out.numpy(), oracle(q, k, v), rtol=1e-10,
                               atol=1e-12)


def test_attention_map_masks_self_and_sums_to_one(inputs):
    q, k, _ = inputs((2, 3, 1, 4, 5), grad=False)
    att = criss_cross_attention_map(q, k).numpy()
    assert att.shape == (2, 4, 5, 9)
    np.testing.assert_allclose(att.sum(-1), 1.0, rtol=1e-12)
    for h in range(4):
        assert np.all(att[:, h, :, h] < 1e-20)  # Paddle softmax floors at e^-64


def test_reference_float64_gradient_matches_finite_differences(inputs,
                                                                oracle):
    q, k, v = inputs((1, 2, 2, 3, 4))
    g = paddle.to_tensor(np.random.RandomState(1).randn(1, 2, 3, 4))
    grads = paddle.grad([criss_cross_attention_reference(q, k, v)],
                        [q, k, v], [g])
    arrays = [x.numpy() for x in (q, k, v)]
    eps = 1e-6
    for which, grad in enumerate(grads):
        for idx in [(0, 0, 0, 0), (0, 1, 2, 3), (0, 1, 1, 2)]:
            plus = [a.copy() for a in arrays]
            minus = [a.copy() for a in arrays]
            plus[which][idx] += eps
            minus[which][idx] -= eps
            numeric = ((oracle(*plus) - oracle(*minus)) *
                       g.numpy()).sum() / (2 * eps)
            assert grad.numpy()[idx] == pytest.approx(numeric, rel=1e-6,
                                                      abs=1e-9)


class _Attend(paddle.nn.Layer):
    def __init__(self, backend):
        super().__init__()
        self.proj = paddle.nn.Conv2D(3, 6, 1)
        self.backend = backend

    def forward(self, x):
        y = self.proj(x)
        return criss_cross_attention(y[:, :2], y[:, 2:4], y,
                                     backend=self.backend)


def test_reference_under_to_static_matches_eager():
    paddle.seed(3)
    layer = _Attend('reference')
    x = paddle.randn([2, 3, 5, 6])
    spec = [paddle.static.InputSpec([None, 3, 5, 6], 'float32')]
    static = paddle.jit.to_static(layer, input_spec=spec, full_graph=True)
    np.testing.assert_allclose(static(x).numpy(), layer(x).numpy(),
                               rtol=1e-5, atol=1e-6)


def _tensor(shape, dtype='float32'):
    return paddle.zeros(shape, dtype)


@pytest.mark.parametrize('args, words', [
    ((_tensor([1, 2, 3, 4], 'int32'), _tensor([1, 2, 3, 4], 'int32'),
      _tensor([1, 5, 3, 4], 'int32')), ['query', 'int32', 'astype']),
    ((_tensor([2, 3, 4]), _tensor([2, 3, 4]), _tensor([2, 3, 4])),
     ['query', '4-D', '[2, 3, 4]']),
    ((_tensor([1, 2, 3, 4]), _tensor([1, 3, 3, 4]), _tensor([1, 5, 3, 4])),
     ['query has 2 channels but key has 3']),
    ((_tensor([1, 2, 3, 4]), _tensor([1, 2, 3, 5]), _tensor([1, 5, 3, 4])),
     ['key shape [1, 2, 3, 5]', 'query shape [1, 2, 3, 4]']),
    ((_tensor([1, 2, 3, 4]), _tensor([1, 2, 3, 4]), _tensor([2, 5, 3, 4])),
     ['value shape [2, 5, 3, 4]', 'N, H and W']),
    ((_tensor([1, 2, 3, 4]), _tensor([1, 2, 3, 4], 'float64'),
      _tensor([1, 5, 3, 4])), ['dtypes differ', 'float32, float64']),
])
@pytest.mark.parametrize('backend', ['reference', 'auto'])
def test_bad_inputs_get_one_clear_sentence(args, words, backend):
    with pytest.raises(OpInputError) as info:
        criss_cross_attention(*args, backend=backend)
    message = str(info.value)
    assert isinstance(info.value, SegError)
    assert message.startswith('criss_cross_attention: ')
    assert message.count('. ') == 0 and message.endswith('.')
    for word in words:
        assert word in message


def test_unknown_backend_and_environment_override(monkeypatch, inputs,
                                                 oracle):
    q, k, v = inputs((1, 2, 3, 3, 4), grad=False)
    with pytest.raises(OpInputError, match="backend 'fast'"):
        criss_cross_attention(q, k, v, backend='fast')
    monkeypatch.setenv('PADDLESEG_CCA_BACKEND', 'bogus')
    with pytest.raises(OpInputError, match='PADDLESEG_CCA_BACKEND'):
        criss_cross_attention(q, k, v)  # the variable replaces auto
    out = criss_cross_attention(q, k, v, backend='reference')  # not this
    np.testing.assert_allclose(out.numpy(), oracle(q, k, v), rtol=1e-10)
    monkeypatch.setenv('PADDLESEG_CCA_BACKEND', 'reference')
    assert choose_backend('auto', q) == 'reference'
    monkeypatch.setenv('PADDLESEG_CCA_BACKEND', 'native')
    assert choose_backend('reference', q) == 'reference'  # explicit wins


@pytest.mark.parametrize('dtype', ['float16', 'bfloat16', 'float32',
                                   'float64'])
def test_auto_takes_the_reference_on_gpu_until_measured(monkeypatch, dtype):
    # A GPU tensor as the backend choice sees it: no GPU is needed to test
    # that "auto" does not pick kernels that no benchmark has timed.
    module = importlib.import_module('paddleseg.ops.criss_cross_attention')
    monkeypatch.setattr(module, '_device_of', lambda x: 'gpu')
    monkeypatch.setattr(module.native, '_with_cuda', lambda: True)
    q = paddle.zeros([1, 2, 3, 4], dtype)
    assert native_supports(q)  # backend="native" may still ask for them
    assert not native_wins(q)
    assert choose_backend('auto', q) == 'reference'
