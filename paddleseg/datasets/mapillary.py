"""Mapillary Vistas v1.2 (65 classes), the pre-training set of NVIDIA's
hierarchical multi-scale attention recipes, in its download layout:

    dataset_root/{training,validation}/images/<id>.jpg
    dataset_root/{training,validation}/labels/<id>.png      (v1.2 download)
    dataset_root/{training,validation}/v1.2/labels/<id>.png (v2.0 download)
    dataset_root/testing/images/<id>.jpg                     (no labels)

Labels are 8-bit palette PNGs whose indices are the class ids 0-64 of v1.2's
``config.json``; 65, "Unlabeled" (void), becomes the ignore index 255 on
load, so padding, losses and metrics treat it like every other dataset's
ignore value.
"""

import glob
import os

import numpy as np

from paddleseg.cvlibs import manager
from paddleseg.utils.errors import DataError
from .dataset import Dataset

__all__ = ['MapillaryVistas', 'VOID_ID']

SPLITS = {'train': 'training', 'val': 'validation', 'test': 'testing'}
VOID_ID = 65

# Mapillary Vistas v1.2 `config.json`: `labels[i]['readable']` and
# `labels[i]['color']` for class id i = 0 .. 64 (entry 65, "Unlabeled",
# colour [0, 0, 0], has `evaluate: false` and is the void label). Names and
# colours as the dataset publishes them.
_LABELS = (
    ('Bird', (165, 42, 42)), ('Ground Animal', (0, 192, 0)),
    ('Curb', (196, 196, 196)), ('Fence', (190, 153, 153)),
    ('Guard Rail', (180, 165, 180)), ('Barrier', (90, 120, 150)),
    ('Wall', (102, 102, 156)), ('Bike Lane', (128, 64, 255)),
    ('Crosswalk - Plain', (140, 140, 200)), ('Curb Cut', (170, 170, 170)),
    ('Parking', (250, 170, 160)), ('Pedestrian Area', (96, 96, 96)),
    ('Rail Track', (230, 150, 140)), ('Road', (128, 64, 128)),
    ('Service Lane', (110, 110, 110)), ('Sidewalk', (244, 35, 232)),
    ('Bridge', (150, 100, 100)), ('Building', (70, 70, 70)),
    ('Tunnel', (150, 120, 90)), ('Person', (220, 20, 60)),
    ('Bicyclist', (255, 0, 0)), ('Motorcyclist', (255, 0, 100)),
    ('Other Rider', (255, 0, 200)),
    ('Lane Marking - Crosswalk', (200, 128, 128)),
    ('Lane Marking - General', (255, 255, 255)), ('Mountain', (64, 170, 64)),
    ('Sand', (230, 160, 50)), ('Sky', (70, 130, 180)),
    ('Snow', (190, 255, 255)), ('Terrain', (152, 251, 152)),
    ('Vegetation', (107, 142, 35)), ('Water', (0, 170, 30)),
    ('Banner', (255, 255, 128)), ('Bench', (250, 0, 30)),
    ('Bike Rack', (100, 140, 180)), ('Billboard', (220, 220, 220)),
    ('Catch Basin', (220, 128, 128)), ('CCTV Camera', (222, 40, 40)),
    ('Fire Hydrant', (100, 170, 30)), ('Junction Box', (40, 40, 40)),
    ('Mailbox', (33, 33, 33)), ('Manhole', (100, 128, 160)),
    ('Phone Booth', (142, 0, 0)), ('Pothole', (70, 100, 150)),
    ('Street Light', (210, 170, 100)), ('Pole', (153, 153, 153)),
    ('Traffic Sign Frame', (128, 128, 128)), ('Utility Pole', (0, 0, 80)),
    ('Traffic Light', (250, 170, 30)),
    ('Traffic Sign (Back)', (192, 192, 192)),
    ('Traffic Sign (Front)', (220, 220, 0)), ('Trash Can', (140, 140, 20)),
    ('Bicycle', (119, 11, 32)), ('Boat', (150, 0, 255)),
    ('Bus', (0, 60, 100)), ('Car', (0, 0, 142)), ('Caravan', (0, 0, 90)),
    ('Motorcycle', (0, 0, 230)), ('On Rails', (0, 80, 100)),
    ('Other Vehicle', (128, 64, 64)), ('Trailer', (0, 0, 110)),
    ('Truck', (0, 0, 70)), ('Wheeled Slow', (0, 0, 192)),
    ('Car Mount', (32, 32, 32)), ('Ego Vehicle', (120, 10, 10)),
)


@manager.DATASETS.add_component
class MapillaryVistas(Dataset):
    """Mapillary Vistas v1.2 with its 65 evaluated classes.

    Args:
        transforms (list): Built transforms.
        dataset_root (str): Folder holding ``training``, ``validation`` (and
            ``testing``).
        mode (str): 'train', 'val' or 'test' (test images have no labels).
        edge (bool): Also return class-boundary maps in 'train' mode.
        class_uniform_pct (float): Share of each epoch given to crops centred
            on a class (0: off); see :mod:`.class_uniform`.
        class_uniform_tile (int): Tile side for the class centroids.
    """

    NUM_CLASSES = 65
    IGNORE_INDEX = 255
    CLASS_NAMES = tuple(name for name, _ in _LABELS)
    PALETTE = [list(colour) for _, colour in _LABELS]

    def __init__(self, transforms, dataset_root, mode='train', edge=False,
                 class_uniform_pct=0.0, class_uniform_tile=1024):
        self._setup(mode, dataset_root, self.NUM_CLASSES, transforms, 3,
                    self.IGNORE_INDEX, edge, class_uniform_pct,
                    class_uniform_tile)
        self.file_list = self._scan()
        self._init_class_uniform()

    def _scan(self):
        split = os.path.join(self.dataset_root, SPLITS[self.mode])
        images = sorted(glob.glob(os.path.join(split, 'images', '*.jpg')))
        if not images:
            raise DataError(
                "Mapillary Vistas split '{}' has no images: '{}' holds no "
                '*.jpg files; check dataset_root and the layout '
                '({{training,validation}}/images).'.format(
                    self.mode, os.path.join(split, 'images')))
        if self.mode == 'test':
            return [(img, None) for img in images]
        label_dir = self._label_dir(split)
        file_list = []
        for img in images:
            label = os.path.join(label_dir, os.path.basename(img)[:-4] +
                                 '.png')
            if not os.path.isfile(label):
                raise DataError("Image '{}' has no label '{}'; add it or "
                                'remove the image.'.format(img, label))
            file_list.append((img, label))
        return file_list

    @staticmethod
    def _label_dir(split):
        """``labels`` of the v1.2 download, or ``v1.2/labels`` of v2.0's."""
        for rel in ('labels', os.path.join('v1.2', 'labels')):
            if os.path.isdir(os.path.join(split, rel)):
                return os.path.join(split, rel)
        raise DataError("'{}' has neither labels/ nor v1.2/labels/; this "
                        'dataset reads the v1.2 labels.'.format(split))

    def read_label(self, path):
        label = super().read_label(path)
        return np.where(label == VOID_ID, self.IGNORE_INDEX,
                        label).astype(np.uint8)
