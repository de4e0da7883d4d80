"""Class centers and class attention (ACFNet, Zhang et al., ICCV 2019).

Given pixel features ``F`` (B, C, H, W) and, per pixel, a probability for
each of K classes ``P`` (B, K, H, W) (the softmax of a coarse prediction):

* :func:`class_centers` is the probability-weighted mean feature of each
  class, ``center_k = sum_i P_k(i) F(i) / sum_i P_k(i)``, as (B, K, C): the
  paper's "class center";
* :func:`class_attention` gives every pixel the mix of the centers its own
  probabilities ask for, ``out(i) = sum_k P_k(i) center_k``, as (B, C, H, W):
  the paper's "attentional class feature".

:func:`reference_class_attention` is what the unofficial PyTorch port
(zrl4836/ACFNet) computes in their place: a DANet-style channel attention over
the raw coarse logits (see its docstring). ``ACFNet(acf_style=...)`` picks one.

All three are batched matmuls, reshapes and a softmax: no ``einsum``
(Paddle Inference 3.3 with oneDNN crashes lowering it) and no Python int read
off a tensor's shape (-1 in a static graph with dynamic sizes), so exported
programs run under oneDNN and convert to ONNX.
"""

import paddle
import paddle.nn.functional as F

from paddleseg.ops import OpInputError

__all__ = ['class_centers', 'class_attention', 'reference_class_attention']

_FLOATS = ('float32', 'float64')
_LAYOUT = {'features': '(B, C, H, W)', 'probs': '(B, K, H, W)',
           'logits': '(B, K, H, W)', 'centers': '(B, K, C)'}


def _dtype_name(dtype):
    return str(dtype).replace('paddle.', '').split('.')[-1].lower()


def _same(a, b):
    return a < 0 or b < 0 or a == b  # -1: unknown in a static graph


def _check(fn, named, ndims):
    """Each of ``named`` ({name: tensor}) is a float32/float64 tensor of
    ``ndims[name]`` dimensions, all of one dtype."""
    for name, x in named.items():
        if not isinstance(x, (paddle.Tensor, paddle.pir.Value)):
            raise OpInputError('{}: {} must be a paddle Tensor, got {}.'
                               .format(fn, name, type(x).__name__))
        if len(x.shape) != ndims[name]:
            raise OpInputError(
                '{}: {} must be {}-D {}, got shape {}; reshape it.'.format(
                    fn, name, ndims[name], _LAYOUT[name], list(x.shape)))
        if _dtype_name(x.dtype) not in _FLOATS:
            raise OpInputError(
                '{}: {} has dtype {}, expected float32 or float64; cast it '
                'with .astype("float32").'.format(fn, name,
                                                  _dtype_name(x.dtype)))
    dtypes = [_dtype_name(x.dtype) for x in named.values()]
    if len(set(dtypes)) > 1:
        raise OpInputError('{}: {} have dtypes {}; cast them to one dtype.'
                           .format(fn, ' and '.join(named), ', '.join(dtypes)))



def _check_maps(fn, features, probs, probs_name='probs'):
    _check(fn, {'features': features, probs_name: probs},
           {'features': 4, probs_name: 4})
    f, p = list(features.shape), list(probs.shape)
    if not all(_same(f[i], p[i]) for i in (0, 2, 3)):
        raise OpInputError(
            '{}: features {} and {} {} must have the same batch size, height '
            'and width; resize the {} to the features\' size (or the other '
            'way round).'.format(fn, f, probs_name, p, probs_name))


def _flat(x):
    """(B, D, H, W) -> (B, D, H*W)."""
    return x.reshape([0, 0, -1])


def _unflat(x, like):
    """(B, D, H*W) -> (B, D, H, W) with the H, W of ``like``."""
    if paddle.in_dynamic_mode():
        h, w = like.shape[2:]
    else:
        h, w = paddle.shape(like)[2], paddle.shape(like)[3]
    return x.reshape([0, 0, h, w])


@paddle.jit.not_to_static
def class_centers(features, probs, eps=1e-6):
    """Probability-weighted mean feature of each class.

    ``center_k = sum_i P_k(i) F(i) / max(sum_i P_k(i), eps)`` over the
    pixels i. The guard only acts on a class whose total probability in the
    image is below ``eps``, in particular 0 (a class no pixel can be: its
    center is then 0 instead of 0/0, and its gradient stays finite). Such a
    class weighs at most ``eps`` in :func:`class_attention`, so the guard
    moves any attention value by less than ``eps * max|F|``.

    Args:
        features (Tensor): (B, C, H, W) pixel features.
        probs (Tensor): (B, K, H, W) non-negative class probabilities (a
            softmax over K), same dtype (float32 or float64), B, H and W.
        eps (float): Smallest total probability divided by.

    Returns:
        Tensor: (B, K, C) class centers.
    """
    _check_maps('class_centers', features, probs)
    p = _flat(probs)
    sums = paddle.matmul(p, _flat(features), transpose_y=True)   # (B, K, C)
    total = p.sum(axis=-1, keepdim=True)                          # (B, K, 1)
    return sums / paddle.clip(total, min=eps)


@paddle.jit.not_to_static
def class_attention(centers, probs):
    """Each pixel's probability-weighted mix of the class centers.

    ``out(i) = sum_k P_k(i) center_k``.

    Args:
        centers (Tensor): (B, K, C), e.g. from :func:`class_centers`.
        probs (Tensor): (B, K, H, W) class probabilities, same dtype and B.

    Returns:
        Tensor: (B, C, H, W).
    """
    _check('class_attention', {'centers': centers, 'probs': probs},
           {'centers': 3, 'probs': 4})
    c, p = list(centers.shape), list(probs.shape)
    if not (_same(c[0], p[0]) and _same(c[1], p[1])):
        raise OpInputError(
            'class_attention: centers {} (B, K, C) and probs {} (B, K, H, W) '
            'must have the same batch size and number of classes K; compute '
            'the centers from the same probabilities.'.format(c, p))
    out = paddle.matmul(centers, _flat(probs), transpose_x=True)  # (B, C, HW)
    return _unflat(out, probs)


@paddle.jit.not_to_static
def reference_class_attention(features, logits):
    """The unofficial port's ACF computation (zrl4836/ACFNet ``acf_Module``),
    kept so that its users can compare.

    ``energy = L @ F^T`` (B, K, C) with the raw coarse logits ``L`` (no
    softmax, no normalisation by the class's total), then DANet's channel
    attention trick ``att = softmax(max_c(energy) - energy)`` over the C
    channels, and ``out = att^T @ L`` (B, C, H, W). This is not the paper's
    class center (see :func:`class_centers`).

    Args:
        features (Tensor): (B, C, H, W) pixel features.
        logits (Tensor): (B, K, H, W) coarse logits, same dtype, B, H and W.

    Returns:
        Tensor: (B, C, H, W).
    """
    _check_maps('reference_class_attention', features, logits, 'logits')
    lg = _flat(logits)
    energy = paddle.matmul(lg, _flat(features), transpose_y=True)  # (B, K, C)
    energy = energy.max(axis=-1, keepdim=True) - energy
    att = F.softmax(energy, axis=-1)
    return _unflat(paddle.matmul(att, lg, transpose_x=True), logits)
