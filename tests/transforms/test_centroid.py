"""A sample's ``centroid`` (class-uniform sampling) moves with the image
through the geometric transforms, and the random windows contain it."""

import numpy as np
import pytest

from paddleseg.transforms import (Compose, Padding, RandomHorizontalFlip,
                                  RandomPaddingCrop, RandomScaleAspect,
                                  RandomVerticalFlip, Resize, ResizeByLong,
                                  ResizeStepScaling)


def _sample(h, w, point=None, marker=None):
    """A zero label with value 9 on the ``marker`` (row, col) pixel and its
    eight neighbours."""
    label = np.zeros((h, w), np.uint8)
    if marker is not None:
        r, c = marker
        label[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2] = 9
    data = {'img': np.zeros((h, w, 3), np.float32), 'label': label,
            'gt_fields': ['label'], 'trans_info': []}
    if point is not None:
        data['centroid'] = point
    return data


def test_resizes_scale_the_point():
    data = Resize(target_size=(40, 10))(_sample(20, 20, (5.5, 10.5)))
    assert data['centroid'] == pytest.approx((11.0, 5.25))
    data = ResizeByLong(10)(_sample(20, 40, (20.0, 4.0)))
    assert data['centroid'] == pytest.approx((5.0, 1.0))
    np.random.seed(0)
    data = ResizeStepScaling(2.0, 2.0)(_sample(8, 8, (1.5, 2.5)))
    assert data['centroid'] == pytest.approx((3.0, 5.0))


def test_flips_mirror_the_point_and_padding_keeps_it():
    data = RandomHorizontalFlip(prob=1.0)(_sample(4, 10, (2.5, 1.5)))
    assert data['centroid'] == pytest.approx((7.5, 1.5))
    data = RandomVerticalFlip(prob=1.0)(_sample(4, 10, (2.5, 1.5)))
    assert data['centroid'] == pytest.approx((2.5, 2.5))
    data = Padding(target_size=(12, 6))(_sample(4, 10, (2.5, 1.5)))
    assert data['centroid'] == pytest.approx((2.5, 1.5))
    assert 'centroid' not in RandomHorizontalFlip(1.0)(_sample(4, 10))


@pytest.mark.parametrize('point', [(0.5, 0.5), (29.5, 19.5), (14.5, 3.5),
                                   (29.9, 0.1)])
def test_random_padding_crop_windows_contain_the_point(point):
    seen = set()
    for seed in range(40):
        np.random.seed(seed)
        data = RandomPaddingCrop(crop_size=(8, 6))(
            _sample(20, 30, point, marker=(int(point[1]), int(point[0]))))
        x, y = data['centroid']
        assert 0 <= x < 8 and 0 <= y < 6
        assert data['label'][int(y), int(x)] == 9
        seen.add((round(x - point[0], 3), round(y - point[1], 3)))
    # In a corner the window is forced; elsewhere it is still random.
    assert (len(seen) > 1) == (point == (14.5, 3.5))


def test_random_padding_crop_pads_a_small_image_and_keeps_the_point():
    np.random.seed(1)
    data = RandomPaddingCrop(crop_size=(8, 8))(_sample(4, 5, (4.5, 3.5)))
    assert data['centroid'] == pytest.approx((4.5, 3.5))


def test_without_a_point_the_windows_are_drawn_as_before():
    # The same draws as the former top = randint(h - ch + 1), left = ...
    for seed in range(5):
        np.random.seed(seed)
        top = np.random.randint(20 - 6 + 1)
        left = np.random.randint(30 - 8 + 1)
        np.random.seed(seed)
        data = _sample(20, 30)
        data['img'][:, :, 0] = np.arange(20 * 30).reshape(20, 30)
        out = RandomPaddingCrop(crop_size=(8, 6))(data)
        assert out['img'][0, 0, 0] == top * 30 + left


def test_random_scale_aspect_keeps_the_point_in_its_window():
    for seed in range(30):
        np.random.seed(seed)
        data = RandomScaleAspect(0.2, 0.5)(
            _sample(40, 40, (36.5, 3.5), marker=(3, 36)))
        x, y = data['centroid']
        assert 0 <= x < 40 and 0 <= y < 40
        assert data['label'][int(y), int(x)] == 9


def test_a_training_pipeline_moves_the_point_with_the_pixels():
    pipeline = Compose([ResizeStepScaling(0.5, 2.0, 0),
                        RandomHorizontalFlip(), RandomVerticalFlip(0.5),
                        RandomScaleAspect(0.5, 0.5),
                        RandomPaddingCrop(crop_size=(16, 12))])
    for seed in range(30):
        np.random.seed(seed)
        data = _sample(48, 64, (50.5, 40.5), marker=(40, 50))
        data['img'] = data['img'].copy()
        out = pipeline(data)
        x, y = out['centroid']
        assert 0 <= x < 16 and 0 <= y < 12
        assert out['label'][int(y), int(x)] == 9, seed
