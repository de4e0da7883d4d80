"""Normalize values and RandomDistort's effects on known images."""

import colorsys

import numpy as np
import pytest

from paddleseg.transforms import Normalize, RandomDistort
from paddleseg.transforms import functional as F

OFF = dict(brightness_prob=0, contrast_prob=0, saturation_prob=0, hue_prob=0,
           sharpness_prob=0)


def _colour_image():
    rng = np.random.RandomState(0)
    return rng.randint(30, 220, (6, 5, 3)).astype(np.float32)


def test_normalize_default_maps_0_255_to_minus1_1():
    img = np.array([[[0, 127.5, 255]]], np.float32)
    out = Normalize()({'img': img})['img']
    np.testing.assert_allclose(out, [[[-1, 0, 1]]], atol=1e-6)
    assert out.dtype == np.float32


def test_normalize_per_channel_values():
    img = np.full((1, 2, 3), 51.0, np.float32)  # 0.2 after /255
    out = Normalize(mean=[0.1, 0.2, 0.3], std=[0.1, 0.5, 2.0])(
        {'img': img})['img']
    np.testing.assert_allclose(out[0, 0], [1.0, 0.0, -0.05], atol=1e-6)


def test_normalize_single_value_and_grayscale():
    out = Normalize(mean=[0.5], std=[0.25])({'img': np.full((2, 2), 255.)})
    np.testing.assert_allclose(out['img'], 2.0)


@pytest.mark.parametrize('kwargs, match', [
    ({'std': (0.5, 0, 0.5)}, 'holds a 0'),
    ({'mean': (0.5, 0.5)}, 'same length'),
    ({'mean': 0.5}, 'mean must be a list of numbers'),
])
def test_normalize_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Normalize(**kwargs)


def test_normalize_channel_mismatch():
    with pytest.raises(ValueError, match='3 mean/std values but the image has '
                       '4 channels'):
        Normalize()({'img': np.zeros((2, 2, 4))})


def test_distort_with_all_probabilities_zero_is_identity():
    img = _colour_image() + 0.25  # not even rounded
    data = RandomDistort(**OFF)({'img': img.copy(), 'label': np.ones((6, 5))})
    np.testing.assert_array_equal(data['img'], img)


def test_distort_brightness_scales_every_pixel_by_one_factor():
    img = _colour_image()
    kwargs = dict(OFF, brightness_prob=1, brightness_range=0.4)
    np.random.seed(0)
    factors = []
    for _ in range(10):
        out = RandomDistort(**kwargs)({'img': img.copy()})['img']
        assert out.dtype == np.float32 and out.shape == img.shape
        k = np.median(out / img)
        np.testing.assert_allclose(out, np.clip(img * k, 0, 255), atol=1.01)
        factors.append(k)
    assert 0.6 <= min(factors) < max(factors) <= 1.4


def test_distort_saturation_and_hue_keep_a_gray_image():
    img = np.full((4, 4, 3), 90.0, np.float32)
    kwargs = dict(OFF, saturation_prob=1, hue_prob=1)
    np.random.seed(0)
    for _ in range(5):
        out = RandomDistort(**kwargs)({'img': img.copy()})['img']
        np.testing.assert_allclose(out, img, atol=1)


def test_distort_zero_ranges_keep_the_image():
    img = _colour_image()
    out = RandomDistort(brightness_range=0, brightness_prob=1,
                        contrast_range=0, contrast_prob=1, saturation_range=0,
                        saturation_prob=1, hue_range=0, hue_prob=1,
                        sharpness_range=0, sharpness_prob=1)({'img': img})
    np.testing.assert_allclose(out['img'], img, atol=2)


def test_shift_hue_rotates_red_to_green():
    red = F.to_pil(np.array([[[255, 0, 0]]], np.float32))
    green = np.asarray(F.shift_hue(red, 85), np.float32)[0, 0]
    h, s, v = colorsys.rgb_to_hsv(*(green / 255))
    assert abs(h * 360 - 120) < 3 and s > 0.95 and v > 0.95


def test_distort_grayscale_image_keeps_its_shape():
    img = np.linspace(10, 200, 12, dtype=np.float32).reshape(3, 4)
    np.random.seed(0)
    out = RandomDistort(brightness_prob=1, hue_prob=1)({'img': img})['img']
    assert out.shape == (3, 4)


def test_distort_bad_arguments_and_channels():
    with pytest.raises(ValueError, match='brightness_range must be a number'):
        RandomDistort(brightness_range=-0.1)
    with pytest.raises(ValueError, match=r'hue_prob must be in \[0, 1\]'):
        RandomDistort(hue_prob=1.5)
    with pytest.raises(ValueError, match='1- or 3-channel'):
        RandomDistort()({'img': np.zeros((2, 2, 4), np.float32)})
