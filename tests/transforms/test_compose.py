"""Compose: reading files, channel order, output dtypes and layout, errors;
the registered transform names and their PaddleSeg defaults."""

import inspect

import cv2
import numpy as np
import pytest
from PIL import Image

import paddleseg  # noqa: F401  (registers components)
from paddleseg.cvlibs import manager
from paddleseg.cvlibs.builder import build_component
from paddleseg.transforms import Compose, Normalize
from paddleseg.utils.errors import DataError


def _write_bgr(path, rgb):
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return str(path)


def test_reads_paths_as_rgb_chw_float_and_label_int64(tmp_path):
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)  # red at the top left
    rgb[1, 2] = (0, 0, 200)
    img_path = _write_bgr(tmp_path / 'a.png', rgb)
    lab = Image.fromarray(np.array([[0, 1, 2], [3, 255, 1]], np.uint8), 'P')
    lab.putpalette([255, 255, 255] * 256)  # colours must not be returned
    lab.save(tmp_path / 'a_label.png')
    data = Compose([])({'img': img_path, 'label': str(tmp_path / 'a_label.png'),
                        'gt_fields': ['label']})
    assert data['img'].dtype == np.float32 and data['img'].shape == (3, 2, 3)
    np.testing.assert_array_equal(data['img'][:, 0, 0], [255, 0, 0])
    np.testing.assert_array_equal(data['img'][:, 1, 2], [0, 0, 200])
    assert data['label'].dtype == np.int64
    np.testing.assert_array_equal(data['label'], [[0, 1, 2], [3, 255, 1]])
    assert data['trans_info'] == []


def test_to_rgb_false_keeps_bgr(tmp_path):
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 0] = 255
    img_path = _write_bgr(tmp_path / 'a.png', rgb)
    data = Compose([], to_rgb=False)({'img': img_path})
    np.testing.assert_array_equal(data['img'][:, 0, 0], [0, 0, 255])


def test_arrays_are_used_as_given_and_not_modified():
    img = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    label = np.ones((2, 4), np.uint8)
    data = Compose([Normalize(mean=(0, 0, 0), std=(1, 1, 1))])(
        {'img': img, 'label': label})
    np.testing.assert_allclose(data['img'], img.transpose(2, 0, 1) / 255.0,
                               rtol=1e-6)
    assert img.dtype == np.uint8 and img[0, 0, 1] == 1  # input untouched
    assert data['label'].dtype == np.int64 and data['gt_fields'] == []


def test_grayscale_images(tmp_path):
    path = str(tmp_path / 'g.png')
    cv2.imwrite(path, np.full((3, 5), 7, np.uint8))
    data = Compose([], img_channels=1)({'img': path})
    assert data['img'].shape == (1, 3, 5)
    assert np.all(data['img'] == 7)


def test_missing_and_unreadable_files_are_data_errors(tmp_path):
    with pytest.raises(DataError, match='nope.png'):
        Compose([])({'img': str(tmp_path / 'nope.png')})
    bad = tmp_path / 'bad.png'
    bad.write_bytes(b'not an image')
    with pytest.raises(DataError, match='bad.png.*cannot be decoded'):
        Compose([])({'img': str(bad)})
    with pytest.raises(DataError, match='bad.png'):
        Compose([])({'img': np.zeros((2, 2, 3)), 'label': str(bad)})


@pytest.mark.parametrize('kwargs, match', [
    ({'transforms': Normalize()}, 'must be a list'),
    ({'transforms': [Normalize(), 3]}, r'transforms\[1\] is 3'),
    ({'transforms': [], 'img_channels': 0}, 'img_channels'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Compose(**kwargs)


def test_channel_mismatch_is_explained():
    with pytest.raises(ValueError, match=r'shape \(2, 2, 4\).*img_channels is 3'):
        Compose([])({'img': np.zeros((2, 2, 4), np.uint8)})


# PaddleSeg's argument names and defaults, which configs rely on.
EXPECTED_DEFAULTS = {
    'Resize': {'target_size': (512, 512), 'keep_ratio': False,
               'size_divisor': None, 'interp': 'LINEAR'},
    'ResizeByLong': {'long_size': inspect.Parameter.empty},
    'ResizeByShort': {'short_size': inspect.Parameter.empty},
    'ResizeStepScaling': {'min_scale_factor': 0.75, 'max_scale_factor': 1.25,
                          'scale_step_size': 0.25},
    'RandomPaddingCrop': {'crop_size': (512, 512), 'im_padding_value': 127.5,
                          'label_padding_value': 255, 'category_max_ratio': 1.0,
                          'ignore_index': 255, 'loop_times': 10},
    'RandomHorizontalFlip': {'prob': 0.5},
    'RandomVerticalFlip': {'prob': 0.1},
    'RandomDistort': {'brightness_range': 0.5, 'brightness_prob': 0.5,
                      'contrast_range': 0.5, 'contrast_prob': 0.5,
                      'saturation_range': 0.5, 'saturation_prob': 0.5,
                      'hue_range': 18, 'hue_prob': 0.5,
                      'sharpness_range': 0.5, 'sharpness_prob': 0},
    'RandomScaleAspect': {'min_scale': 0.5, 'aspect_ratio': 0.33},
    'Normalize': {'mean': (0.5, 0.5, 0.5), 'std': (0.5, 0.5, 0.5)},
    'Padding': {'target_size': inspect.Parameter.empty,
                'im_padding_value': 127.5, 'label_padding_value': 255},
}


@pytest.mark.parametrize('name', sorted(EXPECTED_DEFAULTS))
def test_registered_with_paddleseg_signature(name):
    params = inspect.signature(manager.TRANSFORMS[name]).parameters
    assert {k: p.default for k, p in params.items()} == \
        EXPECTED_DEFAULTS[name]


def test_builds_from_config_and_bad_values_name_the_path():
    t = build_component({'type': 'RandomPaddingCrop', 'crop_size': [64, 32]},
                        'train_dataset.transforms[0]', manager.TRANSFORMS)
    assert t.crop_size == (64, 32)
    with pytest.raises(Exception, match=r'transforms\[0\].*crop_size must be '
                       r'\[width, height\]'):
        build_component({'type': 'RandomPaddingCrop', 'crop_size': [64]},
                        'train_dataset.transforms[0]', manager.TRANSFORMS)
