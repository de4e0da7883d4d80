"""Padding, RandomPaddingCrop, RandomScaleAspect and the flips on small known
arrays."""

import numpy as np
import pytest

from paddleseg.transforms import (Padding, RandomHorizontalFlip,
                                  RandomPaddingCrop, RandomScaleAspect,
                                  RandomVerticalFlip)


def _sample(h, w):
    """Image whose channel 0 is ``row * 100 + col`` and a label that is
    ``(row * w + col) % 7`` so windows can be located."""
    rows, cols = np.mgrid[0:h, 0:w]
    img = np.stack([rows * 100 + cols, rows, cols], axis=-1).astype(np.float32)
    label = ((rows * w + cols) % 7).astype(np.uint8)
    return {'img': img, 'label': label, 'gt_fields': ['label'],
            'trans_info': []}


def test_padding_pads_bottom_right_and_records_size():
    data = Padding(target_size=(4, 3))(_sample(2, 3))
    assert data['img'].shape == (3, 4, 3) and data['label'].shape == (3, 4)
    assert data['trans_info'] == [('padding', (2, 3))]
    np.testing.assert_array_equal(data['img'][:2, :3, 0],
                                  [[0, 1, 2], [100, 101, 102]])
    assert np.all(data['img'][2] == 127.5) and np.all(data['img'][:, 3] == 127.5)
    assert np.all(data['label'][2] == 255) and np.all(data['label'][:, 3] == 255)
    np.testing.assert_array_equal(data['label'][:2, :3], [[0, 1, 2], [3, 4, 5]])


def test_padding_values_int_target_and_too_small_target():
    data = Padding(5, im_padding_value=0, label_padding_value=9)(_sample(2, 3))
    assert data['img'].shape == (5, 5, 3)
    assert data['img'][4, 4, 0] == 0 and data['label'][4, 4] == 9
    with pytest.raises(ValueError, match=r'target_size \[2, 2\].*3 x 2'):
        Padding(target_size=(2, 2))(_sample(2, 3))


def test_random_padding_crop_pads_label_with_255_and_crops_to_wh():
    data = RandomPaddingCrop(crop_size=(4, 3))(_sample(2, 3))
    assert data['img'].shape == (3, 4, 3)
    np.testing.assert_array_equal(
        data['label'], [[0, 1, 2, 255], [3, 4, 5, 255], [255, 255, 255, 255]])
    assert data['img'][2, 0, 0] == 127.5 and data['img'][0, 3, 1] == 127.5
    assert data['trans_info'] == []


def test_random_padding_crop_takes_the_same_window_everywhere():
    np.random.seed(3)
    tops_lefts = set()
    for _ in range(30):
        data = RandomPaddingCrop(crop_size=(3, 2))(_sample(6, 8))
        assert data['img'].shape == (2, 3, 3) and data['label'].shape == (2, 3)
        top, left = int(data['img'][0, 0, 1]), int(data['img'][0, 0, 2])
        rows, cols = np.mgrid[top:top + 2, left:left + 3]
        np.testing.assert_array_equal(data['img'][..., 0], rows * 100 + cols)
        np.testing.assert_array_equal(data['label'], (rows * 8 + cols) % 7)
        tops_lefts.add((top, left))
    assert max(t for t, _ in tops_lefts) <= 4 and max(
        l for _, l in tops_lefts) <= 5
    assert len(tops_lefts) > 10  # random, not a fixed window


def test_random_padding_crop_same_size_is_unchanged():
    sample = _sample(2, 3)
    img = sample['img'].copy()
    data = RandomPaddingCrop(crop_size=(3, 2))(sample)
    np.testing.assert_array_equal(data['img'], img)


def test_category_max_ratio_retries_until_two_classes():
    label = np.zeros((1, 10), np.uint8)
    label[0, 9] = 1
    np.random.seed(0)
    t = RandomPaddingCrop(crop_size=(2, 1), category_max_ratio=0.75,
                          loop_times=100)
    for _ in range(5):
        data = t({'img': np.zeros((1, 10, 3), np.float32),
                  'label': label.copy(), 'gt_fields': ['label']})
        np.testing.assert_array_equal(data['label'], [[0, 1]])


@pytest.mark.parametrize('kwargs, match', [
    ({'crop_size': (4, 0)}, 'crop_size'),
    ({'category_max_ratio': 0}, r'category_max_ratio must be in \(0, 1\]'),
    ({'loop_times': 0}, 'loop_times'),
    ({'im_padding_value': 'gray'}, 'im_padding_value must be a number'),
])
def test_random_padding_crop_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RandomPaddingCrop(**kwargs)


def test_horizontal_flip_flips_image_and_label():
    data = RandomHorizontalFlip(prob=1.0)(_sample(2, 3))
    np.testing.assert_array_equal(data['img'][..., 0], [[2, 1, 0],
                                                        [102, 101, 100]])
    np.testing.assert_array_equal(data['label'], [[2, 1, 0], [5, 4, 3]])
    assert data['img'].flags['C_CONTIGUOUS']
    data = RandomHorizontalFlip(prob=0.0)(_sample(2, 3))
    np.testing.assert_array_equal(data['label'], [[0, 1, 2], [3, 4, 5]])


def test_vertical_flip_flips_image_and_label():
    data = RandomVerticalFlip(prob=1.0)(_sample(2, 3))
    np.testing.assert_array_equal(data['img'][..., 0], [[100, 101, 102],
                                                        [0, 1, 2]])
    np.testing.assert_array_equal(data['label'], [[3, 4, 5], [0, 1, 2]])


def test_flip_probability_uses_global_rng():
    np.random.seed(0)
    flips = [RandomHorizontalFlip(0.5)(_sample(1, 2))['label'][0, 0] == 1
             for _ in range(200)]
    assert 70 < sum(flips) < 130
    with pytest.raises(ValueError, match=r'prob must be in \[0, 1\], got 2'):
        RandomHorizontalFlip(prob=2)


def test_random_scale_aspect_keeps_size_and_nearest_labels():
    np.random.seed(0)
    changed = 0
    for _ in range(10):
        data = RandomScaleAspect(min_scale=0.5, aspect_ratio=0.5)(
            _sample(20, 30))
        assert data['img'].shape == (20, 30, 3)
        assert data['label'].shape == (20, 30)
        assert set(np.unique(data['label'])) <= set(range(7))
        changed += not np.array_equal(data['label'], _sample(20, 30)['label'])
    assert changed == 10


def test_random_scale_aspect_disabled_by_zero_and_bad_values():
    sample = _sample(4, 4)
    label = sample['label'].copy()
    np.testing.assert_array_equal(
        RandomScaleAspect(min_scale=0)(sample)['label'], label)
    with pytest.raises(ValueError, match=r'aspect_ratio must be in \[0, 1\]'):
        RandomScaleAspect(aspect_ratio=3)
