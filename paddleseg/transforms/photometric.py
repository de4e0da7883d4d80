"""Photometric transforms: RandomDistort (colour augmentation) and Normalize.

They change only ``data['img']``; labels are untouched.
"""

import numbers

import numpy as np

from paddleseg.cvlibs import manager
from . import functional as F

__all__ = ['RandomDistort', 'Normalize']

_DISTORTIONS = ('brightness', 'contrast', 'saturation', 'hue', 'sharpness')


def _non_negative(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            value < 0:
        raise ValueError('{} must be a number >= 0, got {!r}.'.format(
            name, value))


@manager.TRANSFORMS.add_component
class RandomDistort:
    """Random brightness, contrast, saturation, hue and sharpness changes, in
    a random order, each applied with its own probability.

    Brightness, contrast, saturation and sharpness use a factor drawn from
    ``[1 - range, 1 + range]`` (PIL's ImageEnhance; 1 keeps the image). Hue is
    rotated by a value drawn from ``[-hue_range, hue_range]`` on PIL's 0-255
    hue scale. The image is rounded to 0-255 integers when any change is made.
    Works on 3-channel (RGB) and 1-channel images (hue is then skipped).
    """

    def __init__(self, brightness_range=0.5, brightness_prob=0.5,
                 contrast_range=0.5, contrast_prob=0.5, saturation_range=0.5,
                 saturation_prob=0.5, hue_range=18, hue_prob=0.5,
                 sharpness_range=0.5, sharpness_prob=0):
        args = locals()
        self.ranges, self.probs = {}, {}
        for kind in _DISTORTIONS:
            rng, prob = args[kind + '_range'], args[kind + '_prob']
            _non_negative(rng, 'RandomDistort {}_range'.format(kind))
            _non_negative(prob, 'RandomDistort {}_prob'.format(kind))
            if prob > 1:
                raise ValueError('RandomDistort {}_prob must be in [0, 1], got '
                                 '{}.'.format(kind, prob))
            self.ranges[kind], self.probs[kind] = rng, prob

    def _draw(self):
        """The (kind, amount) changes for one call, in application order."""
        changes = []
        for i in np.random.permutation(len(_DISTORTIONS)):
            kind = _DISTORTIONS[i]
            if np.random.uniform() >= self.probs[kind]:
                continue
            r = self.ranges[kind]
            low, high = (-r, r) if kind == 'hue' else (1 - r, 1 + r)
            changes.append((kind, np.random.uniform(low, high)))
        return changes

    def __call__(self, data):
        img = data['img']
        channels = 1 if img.ndim == 2 else img.shape[2]
        if channels not in (1, 3):
            raise ValueError(
                'RandomDistort works on 1- or 3-channel images, got {} '
                'channels; remove it from the transforms of this dataset.'
                .format(channels))
        changes = self._draw()
        if not changes:
            return data
        im = F.to_pil(img)
        for kind, amount in changes:
            if kind == 'hue':
                im = F.shift_hue(im, round(amount))
            else:
                im = F.enhance(im, kind, amount)
        out = F.from_pil(im, channels)
        data['img'] = out if img.ndim == 3 or out.ndim == 2 else out[:, :, 0]
        return data


@manager.TRANSFORMS.add_component
class Normalize:
    """``(img / 255 - mean) / std`` per channel.

    Args:
        mean (list[float]): One value per channel (or one for all).
        std (list[float]): One non-zero value per channel (or one for all).
    """

    def __init__(self, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)):
        for name, value in (('mean', mean), ('std', std)):
            if (not isinstance(value, (list, tuple)) or not value or not all(
                    isinstance(v, numbers.Real) and not isinstance(v, bool)
                    for v in value)):
                raise ValueError('Normalize {} must be a list of numbers, got '
                                 '{!r}.'.format(name, value))
        if len(mean) != len(std):
            raise ValueError('Normalize mean {} and std {} must have the same '
                             'length.'.format(list(mean), list(std)))
        if any(s == 0 for s in std):
            raise ValueError('Normalize std {} holds a 0; every std must be '
                             'non-zero.'.format(list(std)))
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    def __call__(self, data):
        img = np.asarray(data['img'], dtype=np.float32)
        channels = 1 if img.ndim == 2 else img.shape[2]
        if len(self.mean) not in (1, channels):
            raise ValueError(
                'Normalize has {} mean/std values but the image has {} '
                'channels; give one value per channel.'.format(
                    len(self.mean), channels))
        mean, std = self.mean, self.std
        if img.ndim == 2:
            mean, std = mean[0], std[0]
        data['img'] = (img / 255.0 - mean) / std
        return data
