"""Data transforms: ``Compose`` and the registered transforms a config can
name under ``transforms:`` (PaddleSeg's names and arguments)."""

from . import functional
from .compose import Compose
from .photometric import Normalize, RandomDistort
from .resize import Resize, ResizeByLong, ResizeByShort, ResizeStepScaling
from .transforms import (Padding, RandomHorizontalFlip, RandomPaddingCrop,
                         RandomScaleAspect, RandomVerticalFlip)

__all__ = ['functional', 'Compose', 'Resize', 'ResizeByLong', 'ResizeByShort',
           'ResizeStepScaling', 'RandomPaddingCrop', 'Padding',
           'RandomScaleAspect', 'RandomHorizontalFlip', 'RandomVerticalFlip',
           'RandomDistort', 'Normalize']
