"""Cropping, padding and flipping transforms, and the import point of every
transform (``paddleseg.transforms.transforms.X`` as in PaddleSeg).

Sizes given as pairs are ``(width, height)``, as in PaddleSeg configs. Labels
(every key in ``data['gt_fields']``) are padded with ``label_padding_value``,
by default the ignore index 255, so padded pixels do not count in the loss.
A sample's ``centroid`` (class-uniform sampling; see :mod:`.resize`) moves
with the image, and the random windows of RandomPaddingCrop and
RandomScaleAspect contain it.
"""

import math
import numbers

import numpy as np

from paddleseg.cvlibs import manager
from . import functional as F
from .compose import Compose
from .photometric import Normalize, RandomDistort
from .resize import (Resize, ResizeByLong, ResizeByShort, ResizeStepScaling,
                     apply_geometric, size_pair)

__all__ = ['Compose', 'Resize', 'ResizeByLong', 'ResizeByShort',
           'ResizeStepScaling', 'RandomPaddingCrop', 'Padding',
           'RandomScaleAspect', 'RandomHorizontalFlip', 'RandomVerticalFlip',
           'RandomDistort', 'Normalize']


def _check_number(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError('{} must be a number, got {!r}.'.format(name, value))


def _check_prob(prob, name):
    _check_number(prob, name)
    if not 0 <= prob <= 1:
        raise ValueError('{} must be in [0, 1], got {}.'.format(name, prob))


def _window_starts(size, window, point):
    """``(lowest, highest)`` start of a ``window`` along an axis of
    ``size``: anywhere, or, given a ``point`` coordinate, only starts whose
    window holds the point's pixel."""
    if point is None:
        return 0, size - window
    pixel = min(max(int(math.floor(point)), 0), size - 1)
    return max(0, pixel - window + 1), min(pixel, size - window)


def _random_start(size, window, point):
    low, high = _window_starts(size, window, point)
    return low + np.random.randint(high - low + 1)


def _pad_to(data, height, width, im_value, label_value):
    return apply_geometric(data,
                           lambda im: F.pad(im, height, width, im_value),
                           lambda lab: F.pad(lab, height, width, label_value))


@manager.TRANSFORMS.add_component
class Padding:
    """Pad at the bottom and right to ``target_size``; records
    ``('padding', (h, w))`` of the input in ``trans_info``.

    Args:
        target_size (int|list[int]): ``[width, height]`` to pad to; an image
            larger than this is an error.
        im_padding_value (float): Image padding value (127.5 becomes 0 after
            the default Normalize).
        label_padding_value (int): Label padding value (the ignore index).
    """

    def __init__(self, target_size, im_padding_value=127.5,
                 label_padding_value=255):
        self.target_size = size_pair(target_size, 'Padding target_size')
        _check_number(im_padding_value, 'Padding im_padding_value')
        _check_number(label_padding_value, 'Padding label_padding_value')
        self.im_padding_value = im_padding_value
        self.label_padding_value = label_padding_value

    def __call__(self, data):
        h, w = data['img'].shape[:2]
        tw, th = self.target_size
        if h > th or w > tw:
            raise ValueError(
                'Padding target_size [{}, {}] (width, height) is smaller than '
                'the image ({} x {}); use a target_size at least as large as '
                'the largest image.'.format(tw, th, w, h))
        data.setdefault('trans_info', []).append(('padding', (h, w)))
        return _pad_to(data, th, tw, self.im_padding_value,
                       self.label_padding_value)


@manager.TRANSFORMS.add_component
class RandomPaddingCrop:
    """Pad (bottom/right) to at least ``crop_size``, then crop a random window
    of ``crop_size``; a sample with a ``centroid`` gets a window containing
    it (class-uniform sampling).

    Args:
        crop_size (int|list[int]): ``[width, height]`` of the crop.
        im_padding_value (float): Image padding value.
        label_padding_value (int): Label padding value.
        category_max_ratio (float): When < 1, retry the window (up to
            ``loop_times``) until no single class covers this fraction or more
            of its non-ignored label pixels.
        ignore_index (int): Label value left out of that ratio.
        loop_times (int): Retries for ``category_max_ratio``.
    """

    def __init__(self, crop_size=(512, 512), im_padding_value=127.5,
                 label_padding_value=255, category_max_ratio=1.0,
                 ignore_index=255, loop_times=10):
        self.crop_size = size_pair(crop_size, 'RandomPaddingCrop crop_size')
        _check_number(im_padding_value, 'RandomPaddingCrop im_padding_value')
        _check_number(label_padding_value,
                      'RandomPaddingCrop label_padding_value')
        _check_number(category_max_ratio,
                      'RandomPaddingCrop category_max_ratio')
        if not 0 < category_max_ratio <= 1:
            raise ValueError('RandomPaddingCrop category_max_ratio must be in '
                             '(0, 1], got {}.'.format(category_max_ratio))
        if not isinstance(loop_times, int) or loop_times < 1:
            raise ValueError('RandomPaddingCrop loop_times must be a positive '
                             'integer, got {!r}.'.format(loop_times))
        self.im_padding_value = im_padding_value
        self.label_padding_value = label_padding_value
        self.category_max_ratio = category_max_ratio
        self.ignore_index = ignore_index
        self.loop_times = loop_times

    def __call__(self, data):
        cw, ch = self.crop_size
        h, w = data['img'].shape[:2]
        if (h, w) == (ch, cw):
            return data
        _pad_to(data, ch, cw, self.im_padding_value, self.label_padding_value)
        h, w = data['img'].shape[:2]
        top, left = self._window(data, h, w)
        return apply_geometric(data, lambda a: F.crop(a, top, left, ch, cw),
                               lambda a: F.crop(a, top, left, ch, cw),
                               lambda x, y: (x - left, y - top))

    def _window(self, data, h, w):
        cw, ch = self.crop_size
        label = data.get('label') if 'label' in data.get('gt_fields', []) \
            else None
        x, y = data.get('centroid') or (None, None)
        tries = self.loop_times if (self.category_max_ratio < 1 and
                                    label is not None) else 1
        for _ in range(tries):
            top = _random_start(h, ch, y)
            left = _random_start(w, cw, x)
            if tries == 1:
                break
            window = label[top:top + ch, left:left + cw]
            _, counts = np.unique(window[window != self.ignore_index],
                                  return_counts=True)
            if len(counts) > 1 and (counts.max() / counts.sum() <
                                    self.category_max_ratio):
                break
        return top, left


@manager.TRANSFORMS.add_component
class RandomScaleAspect:
    """Crop a random window of random area and aspect ratio and resize it back
    to the input size (tried 10 times; the sample is unchanged if no window
    fits). ``min_scale`` or ``aspect_ratio`` of 0 disables it. A sample's
    ``centroid`` stays inside the window.

    Args:
        min_scale (float): Smallest window area as a fraction of the image, in
            [0, 1].
        aspect_ratio (float): Window width/height ratios are drawn from
            ``[aspect_ratio, 1 / aspect_ratio]``; in [0, 1].
    """

    def __init__(self, min_scale=0.5, aspect_ratio=0.33):
        for name, value in (('min_scale', min_scale),
                            ('aspect_ratio', aspect_ratio)):
            _check_number(value, 'RandomScaleAspect ' + name)
            if not 0 <= value <= 1:
                raise ValueError('RandomScaleAspect {} must be in [0, 1], got '
                                 '{}.'.format(name, value))
        self.min_scale = min_scale
        self.aspect_ratio = aspect_ratio

    def __call__(self, data):
        if self.min_scale == 0 or self.aspect_ratio == 0:
            return data
        h, w = data['img'].shape[:2]
        for _ in range(10):
            area = h * w * np.random.uniform(self.min_scale, 1.0)
            ratio = np.random.uniform(self.aspect_ratio, 1.0 / self.aspect_ratio)
            dw, dh = int(np.sqrt(area * ratio)), int(np.sqrt(area / ratio))
            if np.random.uniform() < 0.5:
                dw, dh = dh, dw
            if 0 < dh < h and 0 < dw < w:
                return self._crop_resize(data, h, w, dh, dw)
        return data

    @staticmethod
    def _crop_resize(data, h, w, dh, dw):
        x, y = data.get('centroid') or (None, None)
        top = _random_start(h, dh, y)
        left = _random_start(w, dw, x)
        return apply_geometric(
            data,
            lambda im: F.resize(F.crop(im, top, left, dh, dw), (w, h)),
            lambda lab: F.resize_label(F.crop(lab, top, left, dh, dw),
                                       (w, h)),
            lambda px, py: ((px - left) * w / dw, (py - top) * h / dh))


@manager.TRANSFORMS.add_component
class RandomHorizontalFlip:
    """Flip left-right with probability ``prob``."""

    def __init__(self, prob=0.5):
        _check_prob(prob, 'RandomHorizontalFlip prob')
        self.prob = prob

    def __call__(self, data):
        if np.random.uniform() < self.prob:
            w = data['img'].shape[1]
            apply_geometric(data, F.hflip, F.hflip, lambda x, y: (w - x, y))
        return data


@manager.TRANSFORMS.add_component
class RandomVerticalFlip:
    """Flip upside down with probability ``prob``."""

    def __init__(self, prob=0.1):
        _check_prob(prob, 'RandomVerticalFlip prob')
        self.prob = prob

    def __call__(self, data):
        if np.random.uniform() < self.prob:
            h = data['img'].shape[0]
            apply_geometric(data, F.vflip, F.vflip, lambda x, y: (x, h - y))
        return data
