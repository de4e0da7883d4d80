"""Cityscapes (19 evaluation classes) in its official folder layout.

    dataset_root/leftImg8bit/{train,val,test}/<city>/*_leftImg8bit.png
    dataset_root/gtFine/{train,val,test}/<city>/*_gtFine_labelTrainIds.png

When only the official ``*_gtFine_labelIds.png`` files exist, labels are
converted to train ids on load with :data:`LABEL_ID_TO_TRAIN_ID`;
``tools/convert_cityscapes.py`` writes the ``*_labelTrainIds.png`` files once
so that loading does not have to.
"""

import glob
import os

import numpy as np

from paddleseg.cvlibs import manager
from paddleseg.utils import logger
from paddleseg.utils.errors import DataError
from .dataset import Dataset

__all__ = ['Cityscapes', 'LABEL_ID_TO_TRAIN_ID', 'label_ids_to_train_ids']

IMAGE_SUFFIX = '_leftImg8bit.png'
TRAIN_IDS_SUFFIX = '_gtFine_labelTrainIds.png'
LABEL_IDS_SUFFIX = '_gtFine_labelIds.png'

# The official Cityscapes label id -> train id table (cityscapesScripts
# labels.py); ids not listed (0-6, 9, 10, 14-16, 18, 29, 30, -1) are ignored.
LABEL_ID_TO_TRAIN_ID = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}

_LUT = np.full(256, 255, dtype=np.uint8)
for _label_id, _train_id in LABEL_ID_TO_TRAIN_ID.items():
    _LUT[_label_id] = _train_id

# Roots already reported as converting on load (report once per process).
_REPORTED_ROOTS = set()


def label_ids_to_train_ids(label):
    """Map a Cityscapes labelIds map to train ids (others -> 255), uint8."""
    label = np.asarray(label)
    if label.dtype == np.uint8:
        return _LUT[label]
    out = np.full(label.shape, 255, dtype=np.uint8)
    inside = (label >= 0) & (label < 256)
    out[inside] = _LUT[label[inside].astype(np.int64)]
    return out


@manager.DATASETS.add_component
class Cityscapes(Dataset):
    """Cityscapes with its 19 train-id classes.

    Args:
        transforms (list): Built transforms.
        dataset_root (str): Folder holding ``leftImg8bit`` and ``gtFine``.
        mode (str): 'train', 'val' or 'test' (test images have no labels).
        edge (bool): Also return class-boundary maps in 'train' mode.
    """

    NUM_CLASSES = 19
    IGNORE_INDEX = 255
    CLASS_NAMES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole',
                   'traffic light', 'traffic sign', 'vegetation', 'terrain',
                   'sky', 'person', 'rider', 'car', 'truck', 'bus', 'train',
                   'motorcycle', 'bicycle')
    PALETTE = [[128, 64, 128], [244, 35, 232], [70, 70, 70], [102, 102, 156],
               [190, 153, 153], [153, 153, 153], [250, 170, 30],
               [220, 220, 0], [107, 142, 35], [152, 251, 152], [70, 130, 180],
               [220, 20, 60], [255, 0, 0], [0, 0, 142], [0, 0, 70],
               [0, 60, 100], [0, 80, 100], [0, 0, 230], [119, 11, 32]]

    def __init__(self, transforms, dataset_root, mode='train', edge=False):
        self._setup(mode, dataset_root, self.NUM_CLASSES, transforms, 3,
                    self.IGNORE_INDEX, edge)
        self.file_list = self._scan()

    def _scan(self):
        img_dir = os.path.join(self.dataset_root, 'leftImg8bit', self.mode)
        images = sorted(glob.glob(os.path.join(img_dir, '*',
                                               '*' + IMAGE_SUFFIX)))
        if not images:
            raise DataError(
                "Cityscapes split '{}' has no images: '{}' holds no "
                '<city>/*{} files; check dataset_root and the Cityscapes '
                'layout.'.format(self.mode, img_dir, IMAGE_SUFFIX))
        if self.mode == 'test':
            return [(img, None) for img in images]
        file_list, converting = [], 0
        for img in images:
            label = self._label_path(img, img_dir)
            converting += label.endswith(LABEL_IDS_SUFFIX)
            file_list.append((img, label))
        if converting:
            self._report_conversion(converting, len(file_list))
        return file_list

    def _label_path(self, img, img_dir):
        """The train-ids label of ``img``, else its labelIds file."""
        rel = os.path.relpath(img, img_dir)[:-len(IMAGE_SUFFIX)]
        stem = os.path.join(self.dataset_root, 'gtFine', self.mode, rel)
        for suffix in (TRAIN_IDS_SUFFIX, LABEL_IDS_SUFFIX):
            if os.path.isfile(stem + suffix):
                return stem + suffix
        raise DataError(
            "Image '{}' has no label: neither '{}' nor '{}' exists; add the "
            'gtFine labels or remove the image.'.format(
                img, stem + TRAIN_IDS_SUFFIX, stem + LABEL_IDS_SUFFIX))

    def _report_conversion(self, converting, total):
        root = os.path.abspath(self.dataset_root)
        if root in _REPORTED_ROOTS:
            return
        _REPORTED_ROOTS.add(root)
        logger.info(
            'Cityscapes %s: %d of %d labels exist only as *%s and are converted '
            'to train ids on load; run `python tools/convert_cityscapes.py '
            '--dataset_root %s` once to make loading faster.', self.mode,
            converting, total, LABEL_IDS_SUFFIX, self.dataset_root)

    def read_label(self, path):
        label = super().read_label(path)
        if path.endswith(LABEL_IDS_SUFFIX):
            label = label_ids_to_train_ids(label)
        return label
