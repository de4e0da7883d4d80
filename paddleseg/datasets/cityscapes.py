"""Cityscapes (19 evaluation classes) in its official folder layout.

    dataset_root/leftImg8bit/{train,val,test}/<city>/*_leftImg8bit.png
    dataset_root/gtFine/{train,val,test}/<city>/*_gtFine_labelTrainIds.png

When only the official ``*_gtFine_labelIds.png`` files exist, labels are
converted to train ids on load with :data:`LABEL_ID_TO_TRAIN_ID`;
``tools/convert_cityscapes.py`` writes the ``*_labelTrainIds.png`` files once
so that loading does not have to.

``coarse_path`` adds the coarsely annotated extra images, as NVIDIA's
recipes do:

    coarse_path/leftImg8bit/train_extra/<city>/*_leftImg8bit.png
    coarse_path/gtCoarse/train_extra/<city>/*_gtCoarse_labelIds.png
                                        (or *_gtCoarse_labelTrainIds.png)

Without class-uniform sampling they join the training list. With it (as in
NVIDIA's ``cityscapes.py``) an epoch keeps the length of the fine set, its
random images come from the fine set, and the coarse images enter through
their centroids of ``coarse_boost_classes`` (all classes by default), for
the first ``coarse_epochs`` epochs (NVIDIA's ``max_cu_epoch``; all by
default). Unlike NVIDIA, whose ``disable_coarse`` leaves the coarse
centroids in place, later epochs then draw fine centroids only.
"""

import glob
import os

import numpy as np

from paddleseg.cvlibs import manager
from paddleseg.utils import logger
from paddleseg.utils.errors import DataError
from .dataset import Dataset

__all__ = ['Cityscapes', 'LABEL_ID_TO_TRAIN_ID', 'TRAIN_ID_TO_LABEL_ID',
           'label_ids_to_train_ids', 'train_ids_to_label_ids']

IMAGE_SUFFIX = '_leftImg8bit.png'
TRAIN_IDS_SUFFIX = '_gtFine_labelTrainIds.png'
LABEL_IDS_SUFFIX = '_gtFine_labelIds.png'
COARSE_SUFFIXES = ('_gtCoarse_labelTrainIds.png', '_gtCoarse_labelIds.png')
COARSE_SPLIT = 'train_extra'

# The official Cityscapes label id -> train id table (cityscapesScripts
# labels.py); ids not listed (0-6, 9, 10, 14-16, 18, 29, 30, -1) are ignored.
LABEL_ID_TO_TRAIN_ID = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}

# The inverse, for benchmark submissions (cityscapesScripts evaluates label
# ids); train ids without a class (255) become 0, 'unlabeled'.
TRAIN_ID_TO_LABEL_ID = {t: l for l, t in LABEL_ID_TO_TRAIN_ID.items()}

_LUT = np.full(256, 255, dtype=np.uint8)
for _label_id, _train_id in LABEL_ID_TO_TRAIN_ID.items():
    _LUT[_label_id] = _train_id
_INVERSE_LUT = np.zeros(256, dtype=np.uint8)
for _train_id, _label_id in TRAIN_ID_TO_LABEL_ID.items():
    _INVERSE_LUT[_train_id] = _label_id

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


def train_ids_to_label_ids(train_ids):
    """Map a train-id map (values 0-255) to Cityscapes label ids, uint8."""
    train_ids = np.asarray(train_ids)
    if train_ids.size and (train_ids.min() < 0 or train_ids.max() > 255):
        raise ValueError('Train ids must be in [0, 255], got values in [{}, '
                         '{}].'.format(train_ids.min(), train_ids.max()))
    return _INVERSE_LUT[train_ids.astype(np.uint8)]


@manager.DATASETS.add_component
class Cityscapes(Dataset):
    """Cityscapes with its 19 train-id classes.

    Args:
        transforms (list): Built transforms.
        dataset_root (str): Folder holding ``leftImg8bit`` and ``gtFine``.
        mode (str): 'train', 'val' or 'test' (test images have no labels).
        edge (bool): Also return class-boundary maps in 'train' mode.
        class_uniform_pct (float): Share of each epoch given to crops centred
            on a class (0: off); see :mod:`.class_uniform`.
        class_uniform_tile (int): Tile side for the class centroids.
        coarse_path (str, optional): Folder holding ``leftImg8bit/
            train_extra`` and ``gtCoarse/train_extra`` (often
            ``dataset_root`` itself); 'train' mode only.
        coarse_boost_classes (list[int], optional): With class-uniform
            sampling, the train ids whose coarse centroids are drawn
            (default: all).
        coarse_epochs (int, optional): With class-uniform sampling, the
            coarse centroids are drawn in epochs ``0 .. coarse_epochs - 1``
            only (default: every epoch).
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

    def __init__(self, transforms, dataset_root, mode='train', edge=False,
                 class_uniform_pct=0.0, class_uniform_tile=1024,
                 coarse_path=None, coarse_boost_classes=None,
                 coarse_epochs=None):
        self._setup(mode, dataset_root, self.NUM_CLASSES, transforms, 3,
                    self.IGNORE_INDEX, edge, class_uniform_pct,
                    class_uniform_tile)
        self._check_coarse(coarse_path, coarse_boost_classes, coarse_epochs)
        self.coarse_boost_classes = coarse_boost_classes
        self.coarse_epochs = coarse_epochs
        self._rows = None  # centroid rows {with coarse: ..., without: ...}
        self.file_list = self._scan()
        self.num_fine = len(self.file_list)
        if coarse_path is None:
            self._init_class_uniform()
            return
        self.file_list += self._scan_coarse(coarse_path)
        if self.class_uniform_pct:
            self._init_class_uniform(epoch_images=self.num_fine)
            self._rows = self._coarse_row_masks()

    def _check_coarse(self, path, boost, epochs):
        if path is None:
            if boost is not None or epochs is not None:
                raise ValueError('coarse_boost_classes and coarse_epochs need '
                                 'coarse_path; set it or remove them.')
            return
        if self.mode != 'train':
            raise ValueError("coarse_path is for training, but mode is '{}'; "
                             'remove it.'.format(self.mode))
        if (boost is not None or epochs is not None) and \
                not self.class_uniform_pct:
            raise ValueError('coarse_boost_classes and coarse_epochs choose '
                             'coarse centroids, so they need '
                             'class_uniform_pct > 0.')
        if boost is not None and (not isinstance(boost, (list, tuple)) or any(
                isinstance(c, bool) or not isinstance(c, int) or
                not 0 <= c < self.NUM_CLASSES for c in boost)):
            raise ValueError('coarse_boost_classes must be a list of train '
                             'ids in [0, {}), got {!r}.'.format(
                                 self.NUM_CLASSES, boost))
        if epochs is not None and (isinstance(epochs, bool) or
                                   not isinstance(epochs, int) or epochs < 0):
            raise ValueError('coarse_epochs must be a non-negative integer, '
                             'got {!r}.'.format(epochs))

    def _scan_coarse(self, coarse_path):
        img_dir = os.path.join(str(coarse_path), 'leftImg8bit', COARSE_SPLIT)
        images = sorted(glob.glob(os.path.join(img_dir, '*',
                                               '*' + IMAGE_SUFFIX)))
        if not images:
            raise DataError(
                "coarse_path '{}' holds no coarse images: '{}' has no "
                '<city>/*{} files.'.format(coarse_path, img_dir, IMAGE_SUFFIX))
        file_list = []
        for img in images:
            rel = os.path.relpath(img, img_dir)[:-len(IMAGE_SUFFIX)]
            stem = os.path.join(str(coarse_path), 'gtCoarse', COARSE_SPLIT,
                                rel)
            found = [stem + s for s in COARSE_SUFFIXES
                     if os.path.isfile(stem + s)]
            if not found:
                raise DataError("Coarse image '{}' has no label '{}'; add the "
                                'gtCoarse labels or remove the image.'.format(
                                    img, stem + COARSE_SUFFIXES[1]))
            file_list.append((img, found[0]))
        logger.info('Cityscapes: %d fine and %d coarse training images.',
                    self.num_fine, len(file_list))
        return file_list

    def _coarse_row_masks(self):
        """Centroid rows allowed with and without the coarse images."""
        items = self.centroids.items
        fine = items[:, 0] < self.num_fine
        boost = (np.ones(len(items), bool) if self.coarse_boost_classes is None
                 else np.isin(items[:, 1], self.coarse_boost_classes))
        return {True: np.flatnonzero(fine | boost),
                False: np.flatnonzero(fine)}

    def _centroid_rows(self, epoch):
        if self._rows is None:
            return None
        with_coarse = self.coarse_epochs is None or epoch < self.coarse_epochs
        return self._rows[with_coarse]

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
        if path.endswith('_labelIds.png'):  # gtFine or gtCoarse label ids
            label = label_ids_to_train_ids(label)
        return label
