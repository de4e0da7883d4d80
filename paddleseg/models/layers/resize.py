"""Bilinear resizing that exported models can run under oneDNN.

Paddle Inference 3.3 on CPU with oneDNN cannot run ``bilinear_interp``: its
oneDNN kernel fails at start with "ConvertPirAttribute2RuntimeAttribute not
support [pir::ArrayAttribute<pir::DoubleAttribute>]", so every model ending in
``F.interpolate`` had to run without oneDNN (7-8x slower). In static graphs
(``paddle.jit.to_static``, export) :func:`resize_bilinear` therefore writes
the same interpolation as two separable gathers, which oneDNN, plain CPU and
ONNX all run; eager mode keeps Paddle's kernel.

:func:`resize_by_factor` is ``F.interpolate(x, scale_factor=...)`` in the
same two forms: the output size ``floor(size * factor)`` is computed from the
input's run-time size, and the source positions step by ``1 / factor`` (what
Paddle's kernel does with a scale factor), not by ``in / out``.
"""

import numpy as np
import paddle
import paddle.nn.functional as F

__all__ = ['resize_bilinear', 'resize_by_factor', 'spatial_size']


def _int64(size):
    """A 0-D int64 tensor of ``size`` (an int or a tensor)."""
    if isinstance(size, int):
        return paddle.full([], size, 'int64')
    return paddle.cast(size, 'int64').reshape([])


def _axis_weights(in_size, out_size, align_corners, ratio=None):
    """For each output position along one axis: the two source indices and
    the weight of the second, as Paddle's bilinear_interp computes them
    (align_mode 0: half-pixel centres, clamped at 0). ``ratio`` (a float) is
    the step between source positions where a scale factor sets it (its
    inverse); by default ``in / out``. Like the kernel, a one-pixel output
    takes the first source pixel."""
    in_size, out_size = _int64(in_size), _int64(out_size)
    in_f, out_f = paddle.cast(in_size, 'float32'), paddle.cast(out_size,
                                                               'float32')
    dst = paddle.arange(out_size, dtype='float32')
    if align_corners:
        src = dst * ((in_f - 1) / paddle.maximum(out_f - 1,
                                                 paddle.ones_like(out_f)))
    else:
        step = in_f / out_f if ratio is None else paddle.full([], ratio,
                                                               'float32')
        step = step * paddle.cast(out_size > 1, 'float32')
        src = paddle.clip((dst + 0.5) * step - 0.5, min=0.0)
    first = paddle.floor(src)
    weight = src - first
    last = in_size - 1
    first = paddle.minimum(paddle.cast(first, 'int64'), last)
    return first, paddle.minimum(first + 1, last), weight


def _lerp_axis(x, in_size, out_size, axis, align_corners, ratio=None):
    first, second, weight = _axis_weights(in_size, out_size, align_corners,
                                          ratio)
    if axis == 2:
        weight = weight.reshape([-1, 1])
    # a + (b - a) w: one multiply fewer than a (1 - w) + b w, and oneDNN runs
    # it about twice as fast (measured on an exported MscaleOCRNet).
    a = paddle.index_select(x, first, axis=axis)
    return a + (paddle.index_select(x, second, axis=axis) - a) * weight


def resize_bilinear(x, size, align_corners=False):
    """Bilinear resize of an NCHW tensor to ``size`` (H, W), equal to
    ``F.interpolate(x, size, mode='bilinear', align_corners=...)``.

    Args:
        x (Tensor): (N, C, H, W) float tensor.
        size (list): Output (H, W): ints, or 0-D int tensors in a static
            graph (``paddle.shape(y)[2:]``).
        align_corners (bool): As in ``F.interpolate``.

    Returns:
        Tensor: (N, C, size[0], size[1]).
    """
    if paddle.in_dynamic_mode():
        return F.interpolate(x, [int(s) for s in size], mode='bilinear',
                             align_corners=align_corners)
    in_shape = paddle.shape(x)
    x = _lerp_axis(x, in_shape[2], size[0], 2, align_corners)
    return _lerp_axis(x, in_shape[3], size[1], 3, align_corners)


def resize_by_factor(x, factor, align_corners=False):
    """Bilinear resize of an NCHW tensor by ``factor``, equal to
    ``F.interpolate(x, scale_factor=factor, mode='bilinear', ...)``: the
    output is ``floor(H * factor) x floor(W * factor)`` (float32 product, as
    the kernel computes it), and without aligned corners the source
    positions step by ``1 / factor``, which differs from resizing to that
    size when ``H * factor`` is not a whole number.

    Args:
        x (Tensor): (N, C, H, W) float tensor.
        factor (float): A positive Python number, the same on both axes (in
            a static graph it is a constant of the program).
        align_corners (bool): As in ``F.interpolate``.

    Returns:
        Tensor: the resized ``x``.
    """
    factor = float(factor)
    if paddle.in_dynamic_mode():
        return F.interpolate(x, scale_factor=[factor, factor],
                             mode='bilinear', align_corners=align_corners)
    in_shape = paddle.shape(x)
    out = paddle.cast(paddle.floor(paddle.cast(in_shape[2:], 'float32') *
                                   factor), 'int64')
    # The kernel's step: float(1.0 / float32(factor)).
    ratio = float(np.float32(1.0 / float(np.float32(factor))))
    x = _lerp_axis(x, in_shape[2], out[0], 2, align_corners, ratio)
    return _lerp_axis(x, in_shape[3], out[1], 3, align_corners, ratio)


def spatial_size(x):
    """(H, W) of an NCHW tensor: ints in eager mode, 0-D tensors in a static
    graph (where the input size is only known at run time)."""
    if paddle.in_dynamic_mode():
        return list(x.shape[2:])
    return paddle.shape(x)[2:]
