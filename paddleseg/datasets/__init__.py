"""Datasets a config can name under ``train_dataset`` / ``val_dataset``."""

from .dataset import Dataset
from .cityscapes import Cityscapes
from .mapillary import MapillaryVistas

__all__ = ['Dataset', 'Cityscapes', 'MapillaryVistas']
