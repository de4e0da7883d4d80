"""Resize, ResizeByLong, ResizeByShort, ResizeStepScaling on small known
arrays: output sizes, nearest labels, trans_info."""

import numpy as np
import pytest

from paddleseg.transforms import (Resize, ResizeByLong, ResizeByShort,
                                  ResizeStepScaling)

LABEL_4x2 = np.array([[0, 1], [2, 3], [4, 5], [6, 255]], np.uint8)


def _sample(h, w, label=None):
    img = np.arange(h * w * 3, dtype=np.float32).reshape(h, w, 3)
    data = {'img': img, 'trans_info': [], 'gt_fields': []}
    if label is not None:
        data['label'] = label
        data['gt_fields'].append('label')
    return data


def test_resize_upscales_label_nearest_and_records_old_size():
    data = Resize(target_size=(4, 8))(_sample(4, 2, LABEL_4x2))
    assert data['img'].shape == (8, 4, 3)
    expected = np.repeat(np.repeat(LABEL_4x2, 2, axis=0), 2, axis=1)
    np.testing.assert_array_equal(data['label'], expected)
    assert data['label'].dtype == np.uint8
    assert data['trans_info'] == [('resize', (4, 2))]


def test_resize_downscale_picks_existing_label_values():
    label = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 255, 255],
                      [2, 2, 255, 255]], np.uint8)
    data = Resize(target_size=(2, 2))(_sample(4, 4, label))
    np.testing.assert_array_equal(data['label'], [[0, 1], [2, 255]])


def test_resize_int64_label_and_single_channel_image():
    data = {'img': np.zeros((4, 2, 1), np.float32),
            'label': LABEL_4x2.astype(np.int64), 'gt_fields': ['label']}
    data = Resize(target_size=(1, 2))(data)
    assert data['img'].shape == (2, 1, 1)
    assert data['label'].dtype == np.int64
    assert data['trans_info'] == [('resize', (4, 2))]


def test_resize_leaves_fields_not_in_gt_fields():
    data = _sample(4, 2)
    data['label'] = LABEL_4x2
    data = Resize(target_size=(4, 8))(data)
    assert data['label'] is LABEL_4x2


@pytest.mark.parametrize('target, kwargs, hw, expected_wh', [
    ((128, 64), {'keep_ratio': True}, (50, 100), (128, 64)),
    ((64, 128), {'keep_ratio': True}, (50, 100), (128, 64)),
    ((60, 60), {'keep_ratio': True}, (50, 100), (60, 30)),
    ((60, 60), {'keep_ratio': True, 'size_divisor': 32}, (50, 100), (64, 32)),
    ((30, 20), {'size_divisor': 16}, (50, 100), (32, 32)),
    ((30, 20), {}, (50, 100), (30, 20)),
])
def test_resize_output_sizes(target, kwargs, hw, expected_wh):
    t = Resize(target_size=target, **kwargs)
    assert t.output_size(*hw) == expected_wh
    out = t(_sample(*hw))['img']
    assert out.shape[:2] == (expected_wh[1], expected_wh[0])


def test_resize_random_interp_draws_from_global_rng():
    np.random.seed(0)
    a = Resize(target_size=(3, 5), interp='RANDOM')(_sample(4, 2))['img']
    np.random.seed(0)
    b = Resize(target_size=(3, 5), interp='RANDOM')(_sample(4, 2))['img']
    assert a.shape == (5, 3, 3)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize('kwargs, match', [
    ({'target_size': (0, 4)}, r'target_size must be \[width, height\]'),
    ({'target_size': [4, 4, 4]}, 'target_size'),
    ({'interp': 'BICUBIC'}, "interp must be one of .*got 'BICUBIC'"),
    ({'size_divisor': 0}, 'size_divisor must be a positive integer'),
])
def test_resize_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Resize(**kwargs)


def test_resize_by_long_and_short():
    data = ResizeByLong(long_size=8)(_sample(4, 2, LABEL_4x2))
    assert data['img'].shape == (8, 4, 3)
    np.testing.assert_array_equal(
        data['label'], np.repeat(np.repeat(LABEL_4x2, 2, 0), 2, 1))
    assert data['trans_info'] == [('resize', (4, 2))]
    data = ResizeByShort(short_size=3)(_sample(4, 2))
    assert data['img'].shape == (6, 3, 3)
    assert data['trans_info'] == [('resize', (4, 2))]
    data = ResizeByShort(short_size=5)(ResizeByLong(long_size=2)(_sample(
        10, 5)))
    assert data['img'].shape == (10, 5, 3)
    assert data['trans_info'] == [('resize', (10, 5)), ('resize', (2, 1))]
    with pytest.raises(ValueError, match='long_size must be a positive'):
        ResizeByLong(long_size=-1)
    with pytest.raises(ValueError, match='short_size'):
        ResizeByShort(short_size=2.5)


def test_step_scaling_factors_and_range():
    t = ResizeStepScaling(min_scale_factor=0.5, max_scale_factor=2.0,
                          scale_step_size=0.25)
    np.testing.assert_allclose(t.factors(), [0.5, 0.75, 1.0, 1.25, 1.5, 1.75,
                                             2.0])
    np.random.seed(1)
    widths = set()
    for _ in range(200):
        data = t(_sample(8, 4, np.zeros((8, 4), np.uint8)))
        h, w = data['img'].shape[:2]
        assert data['label'].shape == (h, w) and h == 2 * w
        widths.add(w)
        assert data['trans_info'] == []  # training-only: not recorded
    assert widths == {2, 3, 4, 5, 6, 7, 8}


def test_step_scaling_uneven_step_keeps_both_ends_and_fixed_scale():
    t = ResizeStepScaling(0.75, 1.25, 0.3)
    np.testing.assert_allclose(t.factors(), [0.75, 1.25])
    data = ResizeStepScaling(1.5, 1.5, 0.25)(_sample(4, 2))
    assert data['img'].shape == (6, 3, 3)


def test_step_scaling_zero_step_is_uniform_in_range():
    t = ResizeStepScaling(0.5, 1.0, 0)
    assert t.factors() is None
    np.random.seed(0)
    widths = {t(_sample(100, 100))['img'].shape[1] for _ in range(30)}
    assert min(widths) >= 50 and max(widths) <= 100 and len(widths) > 10


@pytest.mark.parametrize('args, match', [
    ((1.5, 1.0, 0.25), 'min_scale_factor <= max_scale_factor'),
    ((0, 1.0, 0.25), '0 < min_scale_factor'),
    ((0.5, 1.0, -0.1), 'scale_step_size must be >= 0'),
])
def test_step_scaling_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        ResizeStepScaling(*args)
