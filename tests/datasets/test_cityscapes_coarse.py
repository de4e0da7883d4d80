"""Cityscapes' coarse extra images mixed with the fine ones (NVIDIA's
cityscapes.py), with and without class-uniform sampling; and the train id
-> label id table of submissions."""

import os

import numpy as np
import pytest

from paddleseg.datasets import Cityscapes
from paddleseg.datasets import cityscapes as cs
from paddleseg.transforms import RandomPaddingCrop
from paddleseg.utils.errors import DataError

# Train id -> label id of the classes used here (road, sidewalk, pole,
# traffic light).
LABEL_ID = {0: 7, 1: 8, 5: 17, 6: 19, 255: 0}


@pytest.fixture
def fine_and_coarse(tmp_path, write_image, write_label):
    """6 fine images (road and sidewalk) and 4 coarse ones (sidewalk, pole,
    traffic light; labelIds as in the download); 8x8 pixels."""
    root = tmp_path / 'cityscapes'
    rng = np.random.RandomState(0)
    for i in range(6):
        label = np.where(np.arange(8)[None, :] < 4, 0, 1).repeat(8, 0)
        name = 'aachen_{:06d}_000019'.format(i)
        write_image(root / 'leftImg8bit' / 'train' / 'aachen' /
                    (name + cs.IMAGE_SUFFIX), rng.randint(0, 255, (8, 8, 3),
                                                          dtype=np.uint8))
        write_label(root / 'gtFine' / 'train' / 'aachen' /
                    (name + cs.TRAIN_IDS_SUFFIX), label)
    for i in range(4):
        train_ids = np.full((8, 8), 255, np.uint8)
        train_ids[:3] = 1
        train_ids[4:6, :3] = 5
        train_ids[4:6, 5:] = 6
        label_ids = np.vectorize(LABEL_ID.get)(train_ids).astype(np.uint8)
        name = 'bad-honnef_{:06d}_000000'.format(i)
        write_image(root / 'leftImg8bit' / 'train_extra' / 'bad-honnef' /
                    (name + cs.IMAGE_SUFFIX), rng.randint(0, 255, (8, 8, 3),
                                                          dtype=np.uint8))
        write_label(root / 'gtCoarse' / 'train_extra' / 'bad-honnef' /
                    (name + '_gtCoarse_labelIds.png'), label_ids)
    return str(root)


def test_coarse_images_join_the_training_list(fine_and_coarse):
    ds = Cityscapes([], fine_and_coarse, coarse_path=fine_and_coarse)
    assert len(ds) == 10 and ds.num_fine == 6
    assert all('train_extra' in img for img, _ in ds.file_list[6:])
    label = ds[7]['label']  # labelIds converted to train ids on load
    assert set(np.unique(label).tolist()) == {1, 5, 6, 255}
    assert ds.epoch_order is None


def _counts(ds, seed, epoch):
    order = ds.epoch_order(seed, epoch)
    n = len(ds.file_list)
    items = ds.centroids.items[order[order >= n] - n]
    return order, items


def test_class_uniform_draws_coarse_centroids_of_the_boost_classes(
        fine_and_coarse):
    ds = Cityscapes([RandomPaddingCrop([4, 4])], fine_and_coarse,
                    class_uniform_pct=1.0, class_uniform_tile=8,
                    coarse_path=fine_and_coarse, coarse_boost_classes=[5],
                    coarse_epochs=2)
    # An epoch is as long as the fine set; random images are fine ones.
    assert len(ds) == 6
    assert ds.centroids.classes == [0, 1, 5, 6]
    for epoch in (0, 1):
        order, items = _counts(ds, 0, epoch)
        assert len(order) == 6 and not (order < 10).any()  # pct 1: no random
        # Fine classes 0 and 1 and the boost class 5 (coarse only): 2 each.
        assert sorted(items[:, 1].tolist()) == [0, 0, 1, 1, 5, 5]
        coarse = items[items[:, 0] >= 6]
        assert set(coarse[:, 1].tolist()) <= {5}  # no coarse sidewalk, pole
    # From epoch coarse_epochs on, only fine centroids (NVIDIA's
    # disable_coarse left them in).
    order, items = _counts(ds, 0, 2)
    assert sorted(items[:, 1].tolist()) == [0, 0, 0, 1, 1, 1]
    assert (items[:, 0] < 6).all()
    sample = ds[int(order[0])]
    assert sample['label'].shape == (4, 4)


def test_all_classes_boost_by_default(fine_and_coarse):
    ds = Cityscapes([RandomPaddingCrop([4, 4])], fine_and_coarse,
                    class_uniform_pct=1.0, class_uniform_tile=8,
                    coarse_path=fine_and_coarse)
    order, items = _counts(ds, 1, 0)
    # int(6 * 1.0 / 4) = 1 crop for each of 4 classes, 2 random fine images.
    assert len(order) == 6 and sorted(order[order < 10].tolist()) == sorted(
        set(order[order < 10].tolist())) and (order < 6).sum() == 2
    assert sorted(items[:, 1].tolist()) == [0, 1, 5, 6]
    assert (items[items[:, 1] >= 5, 0] >= 6).all()  # pole, light: coarse


def test_coarse_argument_errors(fine_and_coarse, tmp_path):
    with pytest.raises(ValueError, match='need coarse_path'):
        Cityscapes([], fine_and_coarse, coarse_boost_classes=[5])
    with pytest.raises(ValueError, match='need class_uniform_pct > 0'):
        Cityscapes([], fine_and_coarse, coarse_path=fine_and_coarse,
                   coarse_epochs=3)
    with pytest.raises(ValueError, match="coarse_path is for training, but "
                       "mode is 'val'"):
        Cityscapes([], fine_and_coarse, mode='val', coarse_path='x')
    with pytest.raises(ValueError,
                       match=r'train ids in \[0, 19\), got \[19\]'):
        Cityscapes([], fine_and_coarse, class_uniform_pct=0.5,
                   coarse_path=fine_and_coarse, coarse_boost_classes=[19])
    with pytest.raises(DataError, match='holds no coarse images'):
        Cityscapes([], fine_and_coarse, coarse_path=str(tmp_path))
    label = os.path.join(fine_and_coarse, 'gtCoarse', 'train_extra',
                         'bad-honnef',
                         'bad-honnef_000001_000000_gtCoarse_labelIds.png')
    os.remove(label)
    with pytest.raises(DataError, match='has no label .*000001_000000_'
                       'gtCoarse_labelIds.png'):
        Cityscapes([], fine_and_coarse, coarse_path=fine_and_coarse)


def test_train_ids_to_label_ids_inverts_the_official_table():
    train_ids = np.array([[0, 1, 18], [255, 13, 7]], np.uint8)
    np.testing.assert_array_equal(cs.train_ids_to_label_ids(train_ids),
                                  [[7, 8, 33], [0, 26, 20]])
    every = np.arange(19, dtype=np.uint8)
    np.testing.assert_array_equal(
        cs.label_ids_to_train_ids(cs.train_ids_to_label_ids(every)), every)
    with pytest.raises(ValueError, match=r'in \[0, 255\]'):
        cs.train_ids_to_label_ids(np.array([300]))
