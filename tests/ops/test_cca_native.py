"""The native criss-cross attention operator against the reference: values
and gradients, dtypes, shapes, recurrence, static graphs, export, checks."""

import numpy as np
import paddle
import pytest

from paddleseg.ops import (OpInputError, criss_cross_attention,
                           criss_cross_attention_reference)
from paddleseg.ops.criss_cross_attention import _run_native, choose_backend

SHAPES = [(2, 3, 5, 6, 7),    # B > 1, H != W, W < one vector of 8
          (1, 2, 4, 1, 11),   # H = 1
          (1, 2, 4, 9, 1),    # W = 1
          (2, 4, 9, 10, 19),  # W over two chunks, last one partial
          (1, 3, 2, 16, 16)]  # W a multiple of 8
TOL = {'float32': dict(rtol=2e-5, atol=2e-6),
       'float64': dict(rtol=1e-11, atol=1e-12)}


def _both(q, k, v, g):
    """Output and input gradients of the native op and of the reference."""
    results = []
    for fn in (lambda *a: criss_cross_attention(*a, backend='native'),
               criss_cross_attention_reference):
        out = fn(q, k, v)
        grads = paddle.grad([out], [q, k, v], [g])
        results.append([out.numpy()] + [x.numpy() for x in grads])
    return results


@pytest.mark.parametrize('dtype', ['float32', 'float64'])
@pytest.mark.parametrize('shape', SHAPES)
def test_native_matches_reference(native_op, inputs, dtype, shape):
    q, k, v = inputs(shape, dtype)
    g = paddle.to_tensor(np.random.RandomState(5).randn(
        shape[0], shape[2], shape[3], shape[4]).astype(dtype))
    native, reference = _both(q, k, v, g)
    for name, a, b in zip(['out', 'dq', 'dk', 'dv'], native, reference):
        np.testing.assert_allclose(a, b, err_msg=name, **TOL[dtype])


def test_native_matches_numpy_oracle(native_op, inputs, oracle):
    q, k, v = inputs((2, 3, 4, 7, 13), grad=False)
    out = criss_cross_attention(q, k, v, backend='native')
    np.testing.assert_allclose(out.numpy(), oracle(q, k, v), rtol=1e-11)


def test_native_float64_gradient_matches_finite_differences(native_op,
                                                            inputs, oracle):
    q, k, v = inputs((2, 2, 3, 3, 9))
    g = np.random.RandomState(2).randn(2, 3, 3, 9)
    out = criss_cross_attention(q, k, v, backend='native')
    grads = paddle.grad([out], [q, k, v], [paddle.to_tensor(g)])
    arrays = [x.numpy() for x in (q, k, v)]
    eps = 1e-6
    for which, grad in enumerate(grads):
        for idx in [(0, 0, 0, 0), (1, 1, 2, 8), (0, 1, 1, 4), (1, 0, 2, 0)]:
            plus = [a.copy() for a in arrays]
            minus = [a.copy() for a in arrays]
            plus[which][idx] += eps
            minus[which][idx] -= eps
            numeric = ((oracle(*plus) - oracle(*minus)) * g).sum() / (2 * eps)
            assert grad.numpy()[idx] == pytest.approx(numeric, rel=1e-6,
                                                      abs=1e-9)


class _Recurrent(paddle.nn.Layer):
    """CCNet's recurrence: the same projections and attention, R times."""

    def __init__(self, channels, backend, recurrence=2):
        super().__init__()
        self.q = paddle.nn.Conv2D(channels, 2, 1)
        self.k = paddle.nn.Conv2D(channels, 2, 1)
        self.v = paddle.nn.Conv2D(channels, channels, 1)
        self.backend, self.recurrence = backend, recurrence

    def forward(self, x):
        for _ in range(self.recurrence):
            x = x + criss_cross_attention(self.q(x), self.k(x), self.v(x),
                                          backend=self.backend)
        return x


def test_recurrence_two_shares_inputs_and_weights(native_op):
    x = paddle.to_tensor(np.random.RandomState(4).randn(2, 4, 6, 9)
                         .astype('float64'))
    x.stop_gradient = False
    results = []
    for backend in ('native', 'reference'):
        paddle.seed(7)
        layer = _Recurrent(4, backend)
        layer.to(dtype='float64')
        out = layer(x)
        grads = paddle.grad([out.sum()], [x] + layer.parameters())
        results.append([out.numpy()] + [gr.numpy() for gr in grads])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_native_under_to_static_trains_and_exports(native_op, tmp_path):
    paddle.seed(3)
    layer = _Recurrent(4, 'native')
    x = paddle.randn([2, 4, 5, 10])
    eager = layer(x).numpy()
    spec = [paddle.static.InputSpec([None, 4, 5, 10], 'float32')]
    static = paddle.jit.to_static(layer, input_spec=spec, full_graph=True)
    np.testing.assert_allclose(static(x).numpy(), eager, rtol=1e-5, atol=1e-6)
    static(x).sum().backward()  # gradients through the static program
    assert all(p.grad is not None and np.isfinite(p.grad.numpy()).all()
               for p in layer.parameters())
    paddle.jit.save(static, str(tmp_path / 'model'))
    loaded = paddle.jit.load(str(tmp_path / 'model'))
    np.testing.assert_allclose(loaded(x).numpy(), eager, rtol=1e-5,
                               atol=1e-6)


def test_auto_backend_choice(native_op, inputs):
    q, _, _ = inputs((1, 2, 2, 3, 3), 'float32', grad=False)
    assert choose_backend('auto', q) == 'native'
    double = q.astype('float64')  # supported, but slower than the reference
    assert choose_backend('auto', double) == 'reference'
    assert choose_backend('native', double) == 'native'
    half = q.astype('float16')
    assert choose_backend('auto', half) == 'reference'  # CPU float16
    with pytest.raises(OpInputError, match='does not support float16'):
        choose_backend('native', half)
    # With gradients (training) the whole step is faster with the
    # reference (benchmarks/cca_train_step.py); without, the operator.
    q.stop_gradient = False
    assert choose_backend('auto', q) == 'reference'
    assert choose_backend('native', q) == 'native'
    with paddle.no_grad():
        assert choose_backend('auto', q) == 'native'


def test_cpp_checks_reject_inputs_the_wrapper_would_stop(native_op):
    # Calling the registered operator directly skips the Python checks; the
    # C++ binding still refuses, naming the problem.
    q = paddle.zeros([1, 2, 3, 4])
    with pytest.raises(Exception, match=r'key shape \[1, 3, 3, 4\] must'):
        _run_native(q, paddle.zeros([1, 3, 3, 4]), paddle.zeros([1, 5, 3, 4]))
    with pytest.raises(Exception, match='value shape'):
        _run_native(q, q, paddle.zeros([1, 5, 3, 5]))
    with pytest.raises(Exception, match='float32 and float64'):
        h = q.astype('float16')
        _run_native(h, h, h)


def _predictor(prefix, onednn):
    from paddle import inference
    config = inference.Config(prefix + '.json', prefix + '.pdiparams')
    config.disable_gpu()
    if onednn:
        config.enable_onednn()
    else:
        config.disable_onednn()
    return inference.create_predictor(config)


class _Unguarded(paddle.nn.Layer):
    """The operator called without the copy ``criss_cross_attention`` puts
    before it in static graphs."""

    def __init__(self, channels):
        super().__init__()
        self.q = paddle.nn.Conv2D(channels, 2, 1)
        self.v = paddle.nn.Conv2D(channels, channels, 1)

    def forward(self, x):
        return x + _run_native(self.q(x), self.q(x), self.v(x))


def _run_exported(layer, x, onednn_modes, tmp_path):
    """Outputs of ``layer`` exported and run by Paddle Inference on CPU, one
    per oneDNN mode (the exception where the run fails)."""
    spec = [paddle.static.InputSpec(list(x.shape), 'float32')]
    prefix = str(tmp_path / 'model')
    paddle.jit.save(paddle.jit.to_static(layer, input_spec=spec,
                                         full_graph=True), prefix)
    results = []
    for onednn in onednn_modes:
        predictor = _predictor(prefix, onednn)
        handle = predictor.get_input_handle(predictor.get_input_names()[0])
        handle.copy_from_cpu(x)
        try:
            predictor.run()
        except Exception as e:  # Paddle re-raises it as a bare exception
            results.append(e)
            continue
        name = predictor.get_output_names()[0]
        results.append(predictor.get_output_handle(name).copy_to_cpu())
    return results


def test_paddle_inference_runs_it_with_and_without_onednn(native_op,
                                                          tmp_path):
    paddle.seed(1)
    layer = _Recurrent(4, 'native', recurrence=2)
    layer.eval()
    x = np.random.RandomState(0).randn(1, 4, 6, 10).astype('float32')
    expected = layer(paddle.to_tensor(x)).numpy()
    for out in _run_exported(layer, x, (False, True), tmp_path):
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_operator_refuses_onednn_layout(native_op, tmp_path, capfd):
    # oneDNN hands custom operators its blocked layout; reading it as NCHW
    # would be silently wrong, so the operator refuses with a clear line.
    paddle.seed(1)
    layer = _Unguarded(8)
    layer.eval()
    x = np.random.RandomState(0).randn(1, 8, 6, 10).astype('float32')
    result, = _run_exported(layer, x, (True,), tmp_path)
    assert isinstance(result, Exception)
    assert "arrived in oneDNN's blocked layout" in capfd.readouterr().err
