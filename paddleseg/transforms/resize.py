"""Resizing transforms: Resize, ResizeByLong, ResizeByShort (recorded in
``trans_info`` so evaluation can map predictions back) and the training-time
ResizeStepScaling.

Sizes given as pairs are ``(width, height)``, as in PaddleSeg configs; the
sizes recorded in ``trans_info`` are ``(height, width)`` of the input.

A class-uniform training sample (:mod:`paddleseg.datasets.class_uniform`)
carries ``data['centroid']``, an ``(x, y)`` point in pixels of the current
image: ``(0, 0)`` is the top-left corner and pixel ``(row, col)`` covers
``[col, col + 1) x [row, row + 1)``. Every geometric transform moves it with
the image (:func:`apply_geometric`'s ``point_fn``), and the cropping
transforms choose a window that contains it.
"""

import math
import numbers

import numpy as np

from paddleseg.cvlibs import manager
from . import functional as F

__all__ = ['Resize', 'ResizeByLong', 'ResizeByShort', 'ResizeStepScaling',
           'size_pair', 'apply_geometric']


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _positive_int(value, name):
    if not _is_int(value) or value <= 0:
        raise ValueError('{} must be a positive integer, got {!r}.'.format(
            name, value))
    return int(value)


def size_pair(value, name):
    """``(width, height)`` from an int or a pair of positive ints.

    Raises:
        ValueError: naming ``name`` and the value otherwise.
    """
    if _is_int(value):
        value = (value, value)
    if (not isinstance(value, (list, tuple)) or len(value) != 2 or
            not all(_is_int(v) and v > 0 for v in value)):
        raise ValueError('{} must be [width, height] with two positive '
                         'integers, got {!r}.'.format(name, value))
    return int(value[0]), int(value[1])


def apply_geometric(data, img_fn, label_fn, point_fn=None):
    """Apply ``img_fn`` to ``data['img']`` and ``label_fn`` to every field
    named in ``data['gt_fields']``; return ``data``.

    ``point_fn(x, y) -> (x, y)`` moves ``data['centroid']`` when the sample
    has one (None: the transform does not move points, as bottom/right
    padding).
    """
    data['img'] = img_fn(data['img'])
    for key in data.get('gt_fields', []):
        data[key] = label_fn(data[key])
    if point_fn is not None and data.get('centroid') is not None:
        data['centroid'] = tuple(float(v) for v in point_fn(
            *data['centroid']))
    return data


def _resize_to(data, size, interp=F.INTERPOLATIONS['LINEAR']):
    h, w = data['img'].shape[:2]
    sx, sy = size[0] / w, size[1] / h
    return apply_geometric(data, lambda im: F.resize(im, size, interp),
                           lambda lab: F.resize_label(lab, size),
                           lambda x, y: (x * sx, y * sy))


def _record_resize(data):
    data.setdefault('trans_info', []).append(
        ('resize', tuple(data['img'].shape[:2])))


@manager.TRANSFORMS.add_component
class Resize:
    """Resize to a fixed size.

    Args:
        target_size (list[int]): ``[width, height]``.
        keep_ratio (bool): Keep the aspect ratio: scale so that the long side
            fits the larger of ``target_size`` and the short side the smaller.
        size_divisor (int, optional): Round the output sides up to a multiple.
        interp (str): NEAREST, LINEAR, CUBIC, AREA, LANCZOS4 or RANDOM (one of
            those drawn per call). Labels always use nearest.
    """

    def __init__(self, target_size=(512, 512), keep_ratio=False,
                 size_divisor=None, interp='LINEAR'):
        self.target_size = size_pair(target_size, 'Resize target_size')
        if interp != 'RANDOM' and interp not in F.INTERPOLATIONS:
            raise ValueError('Resize interp must be one of {} or RANDOM, got '
                             '{!r}.'.format(', '.join(F.INTERPOLATIONS), interp))
        if size_divisor is not None:
            _positive_int(size_divisor, 'Resize size_divisor')
        self.keep_ratio = bool(keep_ratio)
        self.size_divisor = size_divisor
        self.interp = interp

    def output_size(self, height, width):
        """The ``(width, height)`` an input of this size is resized to."""
        tw, th = self.target_size
        if self.keep_ratio:
            scale = min(max(tw, th) / max(width, height),
                        min(tw, th) / min(width, height))
            tw = max(int(width * scale + 0.5), 1)
            th = max(int(height * scale + 0.5), 1)
        if self.size_divisor:
            d = self.size_divisor
            tw, th = math.ceil(tw / d) * d, math.ceil(th / d) * d
        return tw, th

    def __call__(self, data):
        h, w = data['img'].shape[:2]
        _record_resize(data)
        interp = self.interp
        if interp == 'RANDOM':
            names = sorted(F.INTERPOLATIONS)
            interp = names[np.random.randint(len(names))]
        return _resize_to(data, self.output_size(h, w),
                          F.INTERPOLATIONS[interp])


def _scaled(height, width, scale):
    return (max(int(round(width * scale)), 1),
            max(int(round(height * scale)), 1))


@manager.TRANSFORMS.add_component
class ResizeByLong:
    """Resize so that the long side is ``long_size``, keeping the ratio."""

    def __init__(self, long_size):
        self.long_size = _positive_int(long_size, 'ResizeByLong long_size')

    def __call__(self, data):
        h, w = data['img'].shape[:2]
        _record_resize(data)
        return _resize_to(data, _scaled(h, w, self.long_size / max(h, w)))


@manager.TRANSFORMS.add_component
class ResizeByShort:
    """Resize so that the short side is ``short_size``, keeping the ratio."""

    def __init__(self, short_size):
        self.short_size = _positive_int(short_size, 'ResizeByShort short_size')

    def __call__(self, data):
        h, w = data['img'].shape[:2]
        _record_resize(data)
        return _resize_to(data, _scaled(h, w, self.short_size / min(h, w)))


@manager.TRANSFORMS.add_component
class ResizeStepScaling:
    """Rescale by a random factor (training augmentation; not recorded in
    ``trans_info``).

    The factor is drawn from ``n`` evenly spaced values from
    ``min_scale_factor`` to ``max_scale_factor`` (both included), ``n =
    floor((max - min) / scale_step_size) + 1``; uniformly from the interval
    when ``scale_step_size`` is 0.

    Args:
        min_scale_factor (float): Smallest factor, > 0.
        max_scale_factor (float): Largest factor, >= ``min_scale_factor``.
        scale_step_size (float): Step between factors, >= 0.
    """

    def __init__(self, min_scale_factor=0.75, max_scale_factor=1.25,
                 scale_step_size=0.25):
        if not 0 < min_scale_factor <= max_scale_factor:
            raise ValueError(
                'ResizeStepScaling needs 0 < min_scale_factor <= '
                'max_scale_factor, got min_scale_factor={} and '
                'max_scale_factor={}.'.format(min_scale_factor,
                                              max_scale_factor))
        if scale_step_size < 0:
            raise ValueError('ResizeStepScaling scale_step_size must be >= 0, '
                             'got {}.'.format(scale_step_size))
        self.min_scale_factor = min_scale_factor
        self.max_scale_factor = max_scale_factor
        self.scale_step_size = scale_step_size

    def factors(self):
        """The factors drawn from (None when drawn from the interval)."""
        lo, hi, step = (self.min_scale_factor, self.max_scale_factor,
                        self.scale_step_size)
        if lo == hi:
            return np.array([lo])
        if step == 0:
            return None
        num = int(math.floor((hi - lo) / step + 1e-6)) + 1
        return np.linspace(lo, hi, num)

    def __call__(self, data):
        factors = self.factors()
        if factors is None:
            scale = np.random.uniform(self.min_scale_factor,
                                      self.max_scale_factor)
        else:
            scale = factors[np.random.randint(len(factors))]
        h, w = data['img'].shape[:2]
        return _resize_to(data, _scaled(h, w, scale))
