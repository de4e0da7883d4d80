"""The generic dataset: PaddleSeg's file-list format.

Each line of a file list is ``image_path label_path`` (relative to
``dataset_root``, split by ``separator``); test lists may give only the image.
Subclasses with their own layout (e.g. :class:`Cityscapes`) fill
``file_list`` themselves and reuse the loading, checking and transforming.

With ``class_uniform_pct > 0`` a training dataset samples class-centred crops
(:mod:`.class_uniform`): it offers ``epoch_order(seed, epoch)`` to the
training sampler, and a sample index at or past ``len(file_list)`` names a
centroid item, loaded with ``data['centroid']`` for the crop to contain.
"""

import numbers
import os

import numpy as np
import paddle

from paddleseg.cvlibs import manager
from paddleseg.transforms import (Compose, RandomPaddingCrop,
                                  RandomScaleAspect, functional as F)
from paddleseg.utils import logger
from paddleseg.utils.errors import DataError, SegError
from . import class_uniform

__all__ = ['Dataset']

MODES = ('train', 'val', 'test')


def _missing_root_message(dataset_root, name):
    return ("{} dataset_root '{}' does not exist; set dataset_root to the "
            'folder holding the data (or make demo data with `python '
            'tools/make_demo_data.py --out {}`).'.format(name, dataset_root,
                                                        dataset_root))


def _check_class_uniform(mode, pct, tile):
    if (isinstance(pct, bool) or not isinstance(pct, numbers.Real) or
            not 0 <= pct <= 1):
        raise ValueError(
            'class_uniform_pct must be a number in [0, 1] (the share of each '
            'epoch given to class-centred crops; 0 turns them off), got '
            '{!r}.'.format(pct))
    if (isinstance(tile, bool) or not isinstance(tile, numbers.Integral) or
            tile < 1):
        raise ValueError('class_uniform_tile must be a positive integer (tile '
                         'side in pixels), got {!r}.'.format(tile))
    if pct and mode != 'train':
        raise ValueError("class_uniform_pct is for training datasets, but "
                         "mode is '{}'; remove it from this dataset.".format(
                             mode))


@manager.DATASETS.add_component
class Dataset(paddle.io.Dataset):
    """A dataset described by a file list.

    In ``train`` mode the label is transformed with the image. In ``val`` and
    ``test`` mode it is not (``gt_fields`` is empty): it keeps the original
    size, and evaluation maps predictions back with ``trans_info``.

    Args:
        mode (str): 'train', 'val' or 'test'.
        dataset_root (str): Folder the file-list paths are relative to.
        num_classes (int): Number of classes; label values must be in
            ``[0, num_classes)`` or equal ``ignore_index``.
        transforms (list): Built transforms, wrapped in a :class:`Compose`.
        img_channels (int): Image channels (3 colour, 1 grayscale).
        ignore_index (int): Label value that is not a class.
        train_path (str): File list used in 'train' mode.
        val_path (str): File list used in 'val' mode.
        test_path (str): File list used in 'test' mode.
        separator (str): Separator of the two paths on a line.
        edge (bool): In 'train' mode also return ``edge``, 1 near class
            boundaries (for models with an edge loss).
        class_uniform_pct (float): Share of each training epoch given to
            crops centred on a class (NVIDIA's class-uniform sampling,
            :mod:`.class_uniform`); 0 (default) turns it off.
        class_uniform_tile (int): Tile side in pixels over which class
            centroids are taken.

    Raises:
        ValueError: for a bad argument value.
        DataError: for missing, empty or malformed data.
    """

    NUM_CLASSES = None
    IGNORE_INDEX = None
    CLASS_NAMES = None
    PALETTE = None

    def __init__(self, mode, dataset_root, num_classes, transforms,
                 img_channels=3, ignore_index=255, train_path=None,
                 val_path=None, test_path=None, separator=' ', edge=False,
                 class_uniform_pct=0.0, class_uniform_tile=1024):
        self._setup(mode, dataset_root, num_classes, transforms, img_channels,
                    ignore_index, edge, class_uniform_pct, class_uniform_tile)
        list_path = {'train': train_path, 'val': val_path,
                     'test': test_path}[mode]
        if list_path is None:
            raise ValueError("Dataset mode '{}' needs {}_path (the file list); "
                             'set it.'.format(mode, mode))
        self.file_list = self._read_file_list(list_path, separator)
        self._check_files_exist(list_path)
        self._init_class_uniform()

    def _setup(self, mode, dataset_root, num_classes, transforms, img_channels,
               ignore_index, edge, class_uniform_pct=0.0,
               class_uniform_tile=1024):
        """Check and store the arguments every dataset has."""
        _check_class_uniform(mode, class_uniform_pct, class_uniform_tile)
        if mode not in MODES:
            raise ValueError('mode must be one of {}, got {!r}.'.format(
                ', '.join(MODES), mode))
        if (isinstance(num_classes, bool) or
                not isinstance(num_classes, numbers.Integral) or
                num_classes < 1):
            raise ValueError('num_classes must be a positive integer, got '
                             '{!r}.'.format(num_classes))
        if not os.path.isdir(str(dataset_root)):
            raise DataError(_missing_root_message(dataset_root,
                                                  type(self).__name__))
        if not isinstance(transforms, Compose):
            transforms = Compose(transforms if transforms is not None else [],
                                 img_channels=img_channels)
        self.mode = mode
        self.dataset_root = str(dataset_root)
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self._warn_if_ignoring_a_class()
        self.transforms = transforms
        self.img_channels = img_channels
        self.edge = bool(edge)
        self.file_list = []
        self.class_uniform_pct = float(class_uniform_pct)
        self.class_uniform_tile = int(class_uniform_tile)
        self.centroids = None  # a CentroidIndex with class-uniform sampling
        self._epoch_images = None  # images an epoch draws (None: file_list)

    def _init_class_uniform(self, epoch_images=None):
        """Load or build the centroid index once ``file_list`` is complete.

        Args:
            epoch_images (int, optional): Only the first ``epoch_images``
                files are drawn as whole images, and an epoch has that many
                samples (the rest are reached through their centroids, as
                Cityscapes' coarse images are); default: all.
        """
        if not self.class_uniform_pct:
            return
        self._epoch_images = epoch_images
        tile, labels = self.class_uniform_tile, [l for _, l in self.file_list]
        key = class_uniform.cache_key(
            labels, self.dataset_root, tile, self.num_classes,
            self.ignore_index, '{}.{}'.format(type(self).__module__,
                                             type(self).__qualname__))
        self.centroids, path, _ = class_uniform.load_or_build(
            '{}_tile{}_{}.json'.format(type(self).__name__, tile, key), key,
            class_uniform.cache_folders(self.dataset_root),
            lambda: class_uniform.CentroidIndex.build(
                labels, self.read_label, self.num_classes, tile,
                self.ignore_index),
            [os.path.relpath(l, self.dataset_root) for l in labels],
            is_builder=class_uniform.is_local_leader())
        self._report_class_uniform(path)

    def _report_class_uniform(self, path):
        class_uniform.report(self.centroids, len(self), self.class_uniform_pct,
                             self.num_classes, path)
        if not any(isinstance(t, (RandomPaddingCrop, RandomScaleAspect))
                   for t in self.transforms.transforms):
            logger.warning('class_uniform_pct is set but the transforms hold '
                           'no RandomPaddingCrop; class-centred items are '
                           'used as whole images.')

    @property
    def epoch_order(self):
        """``epoch_order(seed, epoch)``, the class-uniform epochs for
        :class:`paddleseg.core.data.ResumableBatchSampler`; None when
        class-uniform sampling is off (the sampler then shuffles)."""
        if self.centroids is None:
            return None
        return self._class_uniform_epoch

    def _class_uniform_epoch(self, seed, epoch):
        return class_uniform.compose_epoch(
            self.centroids, len(self), self.class_uniform_pct, seed, epoch,
            offset=len(self.file_list), rows=self._centroid_rows(epoch))

    def _centroid_rows(self, epoch):
        """Centroid items an epoch may draw (None: all); see Cityscapes."""
        return None

    def _resolve(self, index):
        """``(file index, centroid or None)`` of a sample index."""
        if index < len(self.file_list) or self.centroids is None:
            return index, None
        image, _, x, y = self.centroids.items[index - len(self.file_list)]
        return int(image), (x + 0.5, y + 0.5)  # the centroid pixel's centre

    def files_of(self, index):
        """``(image path, label path)`` of a sample index."""
        return self.file_list[self._resolve(index)[0]]

    def _warn_if_ignoring_a_class(self):
        """Some datasets mean it (a "background" left out), most users do
        not: an ignore_index inside [0, num_classes) silences a real class."""
        ignore = self.ignore_index
        if isinstance(ignore, int) and 0 <= ignore < self.num_classes:
            names = self.CLASS_NAMES
            name = " ('{}')".format(names[ignore]) if names and ignore < len(
                names) else ''
            logger.warning(
                '%s: ignore_index %d is class %d%s of its %d classes, so that '
                'class is never trained nor evaluated; set ignore_index to '
                'a value outside [0, %d) (usually 255) unless that is meant.',
                type(self).__name__, ignore, ignore, name, self.num_classes,
                self.num_classes)

    def _read_file_list(self, list_path, separator):
        """``[(image_path, label_path or None), ...]`` from a file list."""
        if not os.path.isfile(list_path):
            raise DataError("The {} file list '{}' does not exist; set {}_path "
                            'to a text file of `image label` lines.'.format(
                                self.mode, list_path, self.mode))
        file_list = []
        with open(list_path, encoding='utf-8') as f:
            for lineno, line in enumerate(f, 1):
                items = line.strip().split(separator)
                items = [i for i in items if i]
                if not items:
                    continue
                if len(items) > 2 or (len(items) == 1 and self.mode != 'test'):
                    raise DataError(
                        "Line {} of file list '{}' is {!r}; each {} line must "
                        "be `image{}label` (check `separator`).".format(
                            lineno, list_path, line.strip(), self.mode,
                            separator))
                paths = [os.path.join(self.dataset_root, i) for i in items]
                file_list.append((paths[0], paths[1] if len(paths) > 1 else
                                  None))
        if not file_list:
            raise DataError("The {} file list '{}' lists no samples; add "
                            '`image label` lines.'.format(self.mode, list_path))
        self._warn_outside_root(file_list, list_path)
        return file_list

    def _warn_outside_root(self, file_list, list_path):
        """Name, once, the listed files that are not under dataset_root
        (``../`` paths, absolute ones elsewhere). A warning, not an error:
        labels shared from another folder are legitimate, but a list meant
        for another root is the usual cause."""
        root = os.path.realpath(self.dataset_root) + os.sep
        outside = [p for pair in file_list for p in pair
                   if p is not None and
                   not os.path.realpath(p).startswith(root)]
        if outside:
            more = ' (+{} more)'.format(len(outside) - 3) \
                if len(outside) > 3 else ''
            logger.warning("%d file(s) listed in '%s' are outside "
                           "dataset_root '%s': %s%s.", len(outside),
                           list_path, self.dataset_root,
                           ', '.join(outside[:3]), more)

    def _check_files_exist(self, source):
        """Fail on the first listed file that is missing (and count the
        rest), so a wrong path fails before training starts."""
        missing = [p for pair in self.file_list for p in pair
                   if p is not None and not os.path.isfile(p)]
        if missing:
            more = (' ({} more files are missing)'.format(len(missing) - 1)
                    if len(missing) > 1 else '')
            raise DataError("File '{}' listed in '{}' does not exist{}; fix "
                            'the path or dataset_root.'.format(
                                missing[0], source, more))

    def __len__(self):
        if self._epoch_images is not None:
            return self._epoch_images
        return len(self.file_list)

    def read_label(self, path):
        """The raw label map of ``path`` (subclasses convert ids here)."""
        return F.read_label(path)

    def __getitem__(self, idx):
        idx, centroid = self._resolve(idx)
        img_path, label_path = self.file_list[idx]
        data = {'img': self.transforms.read_image(img_path),
                'img_path': img_path, 'label_path': label_path,
                'trans_info': [], 'gt_fields': []}
        if centroid is not None:
            data['centroid'] = centroid
        if label_path is not None:
            data['label'] = self.read_label(label_path)
            self._check_label(data['label'], data['img'], img_path, label_path)
            if self.mode == 'train':
                data['gt_fields'].append('label')
        try:
            data = self.transforms(data)
        except SegError:
            raise
        except ValueError as e:
            raise DataError("Transforming image '{}' failed: {}".format(
                img_path, e)) from e
        if self.edge and self.mode == 'train' and 'label' in data:
            data['edge'] = F.mask_to_binary_edge(data['label'], radius=2)
        return data

    def _check_label(self, label, img, img_path, label_path):
        """Shape and value checks on the raw label (one max/min pass in the
        common case)."""
        if label.ndim != 2:
            raise DataError(
                "Label '{}' has shape {}; labels must be single-channel images "
                'of class ids (PNG mode L or P).'.format(label_path,
                                                         label.shape))
        if label.shape != img.shape[:2]:
            raise DataError(
                "Label '{}' is {}x{} (HxW) but its image '{}' is {}x{}; they "
                'must have the same size.'.format(label_path, *label.shape,
                                                  img_path, *img.shape[:2]))
        if label.size == 0 or (label.max() < self.num_classes and
                               label.min() >= 0):
            return
        bad = (label < 0) | (label >= self.num_classes)
        if self.ignore_index is not None:
            bad &= label != self.ignore_index
        if bad.any():
            values = np.unique(label[bad])
            raise DataError(
                "Label '{}' holds values {} outside [0, {}) that are not the "
                'ignore index {}; fix the label or set num_classes / '
                'ignore_index.'.format(label_path, values[:10].tolist(),
                                       self.num_classes, self.ignore_index))
