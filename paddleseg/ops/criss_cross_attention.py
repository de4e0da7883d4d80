"""Criss-cross attention (CCNet): the functional operator and its reference.

For every pixel (h, w) the output gathers the value tensor along the pixel's
column and row, weighted by a softmax over the H + W - 1 positions of that
cross::

    e(h, w; i) = <query[:, h, w], key[:, i, w]>   i != h   (column)
    e(h, w; j) = <query[:, h, w], key[:, h, j]>            (row)
    a          = softmax over the H + W - 1 energies
    out[:, h, w] = sum_i a(h, w; i) value[:, i, w]
                 + sum_j a(h, w; j) value[:, h, j]

The convention is PaddleSeg's and mmcv's, so their weights give the same
outputs: the pixel itself is counted once (its column entry is masked), one
softmax spans both branches, and there is no 1/sqrt(C) scaling, gamma or
residual (the layer adds those).

``backend``: ``"native"`` is the C++/CUDA operator (``csrc/``, compiled on
first use), ``"reference"`` the pure-Paddle formula below (einsums and batched
matmuls and a ``where`` mask, no ``paddle.diag``, so it exports to ONNX and
runs under oneDNN), ``"auto"`` the native one where it is available and a
measurement shows it faster (``NATIVE_WINS`` without gradients: float32 on
CPU; ``TRAINING_NATIVE_WINS`` when gradients flow, measured on the whole
training step: none, the reference wins there; on GPU no dtype yet, since
its kernels have not been measured on a GPU), else the reference. The
environment variable ``PADDLESEG_CCA_BACKEND`` decides in place of
``"auto"``; an explicit backend always wins over it.
"""

import os

import paddle
import paddle.nn.functional as F
from paddle.base.layer_helper import LayerHelper

from paddleseg.ops import native
from paddleseg.utils.errors import SegError

BACKENDS = ('auto', 'native', 'reference')
_ENV = 'PADDLESEG_CCA_BACKEND'
OP_NAME = 'paddleseg_cca'  # the registered custom operator (csrc/cca_op.cc)
_FLOATS = ('float16', 'bfloat16', 'float32', 'float64')

# Where "auto" runs the native operator: the (device, dtype) pairs a
# benchmark measured faster than the reference. CPU float32:
# benchmarks/results/cca_op.md (float64 is exact but slower there). GPU:
# none until the CUDA kernels are measured against the reference on a GPU
# (benchmarks/gpu/README.md; add a dtype here together with the table that
# shows it faster).
NATIVE_WINS = {'cpu': ('float32',), 'gpu': ()}
# The same when gradients flow (training): what a whole training step
# measured faster, not the operator alone. On the CPU the reference is:
# benchmarks/results/xeon_amx/cca_train_step.md, CCNet demo step 0.63 s
# against 0.74 s with the native operator, a 769x769 crop 6.85 s against
# 7.00 s, although the operator alone is faster (benchmarks/cca_op.py;
# suspected, not measured: its OpenMP runtime beside Paddle's and its
# copies), as 30-iteration runs on an AMD EPYC had shown.
TRAINING_NATIVE_WINS = {'cpu': (), 'gpu': ()}


class OpInputError(SegError, ValueError):
    """An operator received inputs it cannot compute with."""


def _dtype_name(dtype):
    return str(dtype).replace('paddle.', '').split('.')[-1].lower()


def _dim(x, i):
    """Size of axis i: an int when known, else a 0-D int tensor (static)."""
    size = x.shape[i]
    return size if size >= 0 else paddle.shape(x)[i]


def _check_inputs(query, key, value):
    names = ('query', 'key', 'value')
    for name, x in zip(names, (query, key, value)):
        if not isinstance(x, (paddle.Tensor, paddle.pir.Value)):
            raise OpInputError('criss_cross_attention: {} must be a paddle '
                               'Tensor, got {}.'.format(name, type(x).__name__))
        if len(x.shape) != 4:
            raise OpInputError(
                'criss_cross_attention: {} must be 4-D (N, C, H, W), got shape '
                '{}; reshape it.'.format(name, list(x.shape)))
        if _dtype_name(x.dtype) not in _FLOATS:
            raise OpInputError(
                'criss_cross_attention: {} has dtype {}, expected one of {}; '
                'cast it with .astype("float32").'.format(
                    name, _dtype_name(x.dtype), ', '.join(_FLOATS)))
    if _dtype_name(key.dtype) != _dtype_name(query.dtype) or \
            _dtype_name(value.dtype) != _dtype_name(query.dtype):
        raise OpInputError(
            'criss_cross_attention: query, key and value dtypes differ ({}, '
            '{}, {}); cast them to one dtype.'.format(
                *(_dtype_name(x.dtype) for x in (query, key, value))))
    _check_shapes(list(query.shape), list(key.shape), list(value.shape))


def _same(a, b):
    return a < 0 or b < 0 or a == b  # -1: unknown in a static graph


def _check_shapes(q, k, v):
    if not _same(q[1], k[1]):
        raise OpInputError(
            'criss_cross_attention: query has {} channels but key has {}; '
            'project both to the same number of channels.'.format(q[1], k[1]))
    if not all(_same(a, b) for a, b in zip(q, k)):
        raise OpInputError(
            'criss_cross_attention: key shape {} must equal query shape '
            '{}.'.format(k, q))
    if not all(_same(q[i], v[i]) for i in (0, 2, 3)):
        raise OpInputError(
            'criss_cross_attention: value shape {} must match query shape {} '
            'in N, H and W.'.format(v, q))


# The functions below hold no control flow on tensor values, so dy2static
# runs them as written (building graph ops) instead of rewriting their code.
#
# Eager mode (training) and static graphs (export) use different but equal
# forms, each the faster where it runs (measured at (2, 512, 97, 97)):
# einsums train faster than matmuls on transposed copies (forward+backward
# 0.85 s against 1.25 s), while in Paddle Inference with oneDNN the matmuls
# are faster (CCNet-R50 at 769x769: 7.1 s against 8.4 s). The row energies
# are a matmul in both: Paddle Inference 3.3 with oneDNN crashes lowering
# einsum('nchw,nchj->nhwj').
def _energies(query, key):
    """Column energies (N, H, W, H), self entry masked to -inf, and row
    energies (N, H, W, W)."""
    h = _dim(query, 2)
    if paddle.in_dynamic_mode():
        e_col = paddle.einsum('nchw,nciw->nhwi', query, key)
    else:  # (N, W, H, C) x (N, W, C, H) -> (N, W, H, H)
        e_col = paddle.matmul(query.transpose([0, 3, 2, 1]),
                              key.transpose([0, 3, 1, 2]))
        e_col = e_col.transpose([0, 2, 1, 3])
    # Mask the pixel's own column entry: a (H, 1, H) bias of -inf on the
    # diagonal (where(), not paddle.diag, so ONNX export works), broadcast.
    idx = paddle.arange(h)
    self_pos = (idx.unsqueeze(1) == idx.unsqueeze(0)).unsqueeze(1)
    shape = paddle.shape(self_pos)
    bias = paddle.where(self_pos,
                        paddle.full(shape, float('-inf'), e_col.dtype),
                        paddle.zeros(shape, e_col.dtype))
    # (N, H, W, C) x (N, H, C, W) -> (N, H, W, W)
    e_row = paddle.matmul(query.transpose([0, 2, 3, 1]),
                          key.transpose([0, 2, 1, 3]))
    return e_col + bias, e_row


def _aggregate(att, value, h):
    """sum_i att[n, h, w, i] value[n, :, i, w] + sum_j att[n, h, w, H + j]
    value[n, :, h, j], as (N, C, H, W)."""
    a_col, a_row = att[:, :, :, :h], att[:, :, :, h:]
    if paddle.in_dynamic_mode():
        return (paddle.einsum('nhwi,nciw->nchw', a_col, value) +
                paddle.einsum('nhwj,nchj->nchw', a_row, value))
    # (N, W, H, H) x (N, W, H, C) and (N, H, W, W) x (N, H, W, C)
    out_col = paddle.matmul(a_col.transpose([0, 2, 1, 3]),
                            value.transpose([0, 3, 2, 1]))
    out_row = paddle.matmul(a_row, value.transpose([0, 2, 3, 1]))
    return (out_col.transpose([0, 3, 2, 1]) +
            out_row.transpose([0, 3, 1, 2]))


@paddle.jit.not_to_static
def criss_cross_attention_map(query, key):
    """Attention weights of every pixel, for pictures and for the reference.

    Args:
        query (Tensor): (N, Cq, H, W).
        key (Tensor): (N, Cq, H, W).

    Returns:
        Tensor: (N, H, W, H + W). ``[n, h, w, i]`` for i < H is the weight of
        pixel (h, w) on (i, w) (0 at i == h: the pixel counts in its row);
        ``[n, h, w, H + j]`` is its weight on (h, j). Each pixel's weights
        sum to 1.
    """
    return F.softmax(paddle.concat(_energies(query, key), axis=-1), axis=-1)


@paddle.jit.not_to_static
def criss_cross_attention_reference(query, key, value):
    """Pure-Paddle criss-cross attention (the definition; ONNX-exportable).

    Args:
        query (Tensor): (N, Cq, H, W).
        key (Tensor): (N, Cq, H, W).
        value (Tensor): (N, C, H, W).

    Returns:
        Tensor: (N, C, H, W).
    """
    _check_inputs(query, key, value)
    att = criss_cross_attention_map(query, key)
    return _aggregate(att, value, _dim(query, 2))


def _device_of(x):
    if paddle.in_dynamic_mode():
        return 'gpu' if x.place.is_gpu_place() else (
            'cpu' if x.place.is_cpu_place() else 'other')
    return paddle.device.get_device().split(':')[0]  # static graph


def native_supports(query):
    """Whether the native operator computes inputs like ``query`` here."""
    device, dtype = _device_of(query), _dtype_name(query.dtype)
    if device == 'cpu':
        return dtype in ('float32', 'float64')
    return device == 'gpu' and native._with_cuda()


def _training(query):
    """Whether gradients will flow through this call (a training step)."""
    return paddle.is_grad_enabled() and not query.stop_gradient


def native_wins(query):
    """Whether "auto" should run the native operator: where it is supported
    and measured faster, in training (``TRAINING_NATIVE_WINS``) or without
    gradients (``NATIVE_WINS``)."""
    wins = TRAINING_NATIVE_WINS if _training(query) else NATIVE_WINS
    if _dtype_name(query.dtype) not in wins.get(_device_of(query), ()):
        return False
    return native_supports(query)


def choose_backend(backend, query):
    """The backend that will run: ``"native"`` or ``"reference"``."""
    if backend not in BACKENDS:
        raise OpInputError(
            'criss_cross_attention: backend {!r} is not one of {}.'.format(
                backend, ', '.join(BACKENDS)))
    if backend == 'auto':  # the variable stands in for auto only
        backend = os.environ.get(_ENV) or backend
        if backend not in BACKENDS:
            raise OpInputError(
                'criss_cross_attention: ${}={!r} is not one of {}.'.format(
                    _ENV, backend, ', '.join(BACKENDS)))
    if backend == 'reference':
        return backend
    if backend == 'native':
        if native.load_native() is None:
            raise native.native_error()
        if not native_supports(query):
            raise OpInputError(
                'criss_cross_attention: the native backend does not support '
                '{} inputs on {}; use backend="reference".'.format(
                    _dtype_name(query.dtype), _device_of(query)))
        return backend
    if native_wins(query) and native.load_native() is not None:
        return 'native'
    return 'reference'


def _run_native(query, key, value):
    if paddle.in_dynamic_mode() or paddle.framework.in_pir_mode():
        return paddle._C_ops._run_custom_op(OP_NAME, query, key, value)[0]
    helper = LayerHelper(OP_NAME)
    out = helper.create_variable(dtype=value.dtype)
    att = helper.create_variable(dtype=query.dtype)
    helper.append_op(type=OP_NAME, inputs={'Query': query, 'Key': key,
                                       'Value': value},
                     outputs={'Out': out, 'Att': att})
    return out


@paddle.jit.not_to_static
def criss_cross_attention(query, key, value, backend='auto'):
    """Criss-cross attention: out = sum over each pixel's cross of a * value.

    Args:
        query (Tensor): (N, Cq, H, W), float16/bfloat16/float32/float64.
        key (Tensor): (N, Cq, H, W), same dtype.
        value (Tensor): (N, C, H, W), same dtype.
        backend (str): ``"auto"``, ``"native"`` or ``"reference"``;
            ``$PADDLESEG_CCA_BACKEND`` stands in for ``"auto"``.

    Returns:
        Tensor: (N, C, H, W), without gamma or residual.

    Raises:
        OpInputError: bad dtype, rank or shapes, or an unknown backend.
        NativeBuildError: ``backend="native"`` and the operator cannot be
            built here.
    """
    _check_inputs(query, key, value)
    if choose_backend(backend, query) == 'reference':
        return criss_cross_attention_reference(query, key, value)
    if paddle.in_dynamic_mode():
        query, key, value = (x if x.is_contiguous() else x.contiguous()
                             for x in (query, key, value))
    else:
        # Paddle Inference with oneDNN hands a custom operator its blocked
        # layout labelled NCHW (the operator refuses it); a stock op in
        # between makes the predictor convert back to plain NCHW.
        query, key, value = (paddle.assign(x) for x in (query, key, value))
    return _run_native(query, key, value)
