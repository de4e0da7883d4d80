"""Mapillary Vistas v1.2 on a tiny folder in its download layout."""

import os

import cv2
import numpy as np
import pytest
from PIL import Image

from paddleseg.cvlibs import manager
from paddleseg.datasets import MapillaryVistas
from paddleseg.datasets.mapillary import VOID_ID
from paddleseg.transforms import Normalize, RandomPaddingCrop
from paddleseg.utils.errors import DataError


def _write(root, split, name, label, labels_dir='labels'):
    """An image (JPEG) and its palette label PNG, as Mapillary ships them."""
    img_dir = os.path.join(root, split, 'images')
    lab_dir = os.path.join(root, split, labels_dir)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(lab_dir, exist_ok=True)
    h, w = label.shape
    cv2.imwrite(os.path.join(img_dir, name + '.jpg'),
                np.full((h, w, 3), 128, np.uint8))
    im = Image.fromarray(label.astype(np.uint8), mode='P')
    im.putpalette(np.asarray(MapillaryVistas.PALETTE + [[0, 0, 0]],
                             np.uint8).ravel().tolist())
    im.save(os.path.join(lab_dir, name + '.png'))


@pytest.fixture
def vistas(tmp_path):
    root = str(tmp_path / 'mapillary')
    label = np.array([[13, 13, 27, 65], [64, 0, 27, 27]])
    _write(root, 'training', '0aB-xyz', label)
    _write(root, 'training', '1cd', np.full((2, 4), 30))
    _write(root, 'validation', 'v01', label[::-1])
    os.makedirs(os.path.join(root, 'testing', 'images'))
    cv2.imwrite(os.path.join(root, 'testing', 'images', 't.jpg'),
                np.zeros((2, 4, 3), np.uint8))
    return root, label


def test_class_table_is_v1_2s_config():
    assert manager.DATASETS['MapillaryVistas'] is MapillaryVistas
    assert MapillaryVistas.NUM_CLASSES == 65 == len(MapillaryVistas.PALETTE)
    assert len(MapillaryVistas.CLASS_NAMES) == 65
    names = MapillaryVistas.CLASS_NAMES
    assert (names[0], names[13], names[27], names[30], names[64]) == (
        'Bird', 'Road', 'Sky', 'Vegetation', 'Ego Vehicle')
    assert MapillaryVistas.PALETTE[13] == [128, 64, 128]
    assert MapillaryVistas.PALETTE[55] == [0, 0, 142]  # Car
    assert len({tuple(c) for c in MapillaryVistas.PALETTE}) == 65
    assert MapillaryVistas.IGNORE_INDEX == 255 and VOID_ID == 65


def test_loads_the_layout_and_maps_void_to_ignore(vistas):
    root, label = vistas
    ds = MapillaryVistas([Normalize()], root, mode='train')
    assert [os.path.basename(p) for p, _ in ds.file_list] == ['0aB-xyz.jpg',
                                                              '1cd.jpg']
    sample = ds[0]
    expected = np.where(label == 65, 255, label)
    np.testing.assert_array_equal(sample['label'], expected)
    val = MapillaryVistas([Normalize()], root, mode='val')
    np.testing.assert_array_equal(val[0]['label'], expected[::-1])
    test = MapillaryVistas([Normalize()], root, mode='test')
    assert test.file_list[0][1] is None and 'label' not in test[0]


def test_reads_the_v1_2_labels_of_a_v2_0_download(tmp_path):
    root = str(tmp_path / 'v2')
    _write(root, 'training', 'a', np.full((2, 2), 5), labels_dir=os.path.join(
        'v1.2', 'labels'))
    ds = MapillaryVistas([], root)
    assert ds.file_list[0][1].endswith(os.path.join('v1.2', 'labels',
                                                    'a.png'))


def test_class_uniform_sampling_on_mapillary(vistas):
    root, _ = vistas
    ds = MapillaryVistas([RandomPaddingCrop([2, 2])], root,
                         class_uniform_pct=1.0, class_uniform_tile=2)
    assert ds.centroids.classes == [0, 13, 27, 30, 64]  # not void
    assert len(ds.epoch_order(0, 0)) == 2


def test_missing_data_errors(vistas, tmp_path):
    root, _ = vistas
    with pytest.raises(DataError, match="split 'train' has no images"):
        MapillaryVistas([], str(tmp_path))
    os.remove(os.path.join(root, 'training', 'labels', '1cd.png'))
    with pytest.raises(DataError, match="'.*1cd.jpg' has no label"):
        MapillaryVistas([], root)
    os.makedirs(os.path.join(str(tmp_path), 'x', 'validation', 'images'))
    cv2.imwrite(os.path.join(str(tmp_path), 'x', 'validation', 'images',
                             'a.jpg'), np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(DataError, match='neither labels/ nor v1.2/labels/'):
        MapillaryVistas([], os.path.join(str(tmp_path), 'x'), mode='val')
