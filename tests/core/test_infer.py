"""Inference helpers: reverse_transform, sliding window, flips and scales,
and the two ways of combining augmented views (PaddleSeg 2.8's mean of
logits, the default, and the earlier sum of probabilities)."""

import numpy as np
import paddle
import pytest

from paddleseg.core.infer import (aug_inference, build_infer_fn, inference,
                                  reverse_transform, slide_inference,
                                  to_probabilities)
from paddleseg.utils.errors import ConfigError


class PerPixel(paddle.nn.Layer):
    """A 1x1 convolution: every output pixel depends on its input pixel only,
    so windows and flips cannot change it."""

    def __init__(self, classes=4, seed=0):
        super().__init__()
        paddle.seed(seed)
        self.conv = paddle.nn.Conv2D(3, classes, 1)

    def forward(self, x):
        return [self.conv(x), self.conv(x) * 0]


class Pattern(paddle.nn.Layer):
    """Logits that depend on the pixel position only (not flip-equivariant)."""

    def forward(self, x):
        n, _, h, w = x.shape
        col = paddle.arange(w, dtype='float32').reshape([1, 1, 1, w]) / w
        row = paddle.arange(h, dtype='float32').reshape([1, 1, h, 1]) / h
        logit = paddle.concat([col.expand([n, 1, h, w]),
                               row.expand([n, 1, h, w])], axis=1)
        return [logit]


class CountCalls(PerPixel):
    """PerPixel that records the shape of every input it sees."""

    def __init__(self):
        super().__init__()
        self.shapes = []

    def forward(self, x):
        self.shapes.append(tuple(x.shape[-2:]))
        return super().forward(x)


def softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_reverse_transform_resize_then_padding():
    ids = paddle.to_tensor(np.arange(12).reshape(1, 1, 3, 4))
    # The image was 2x3, resized to 6x8 (recorded 2x3), then padded to 8x10
    # (recorded 6x8). Undo: crop to 6x8, then nearest-resize back to 2x3.
    padded = paddle.to_tensor(np.arange(80).reshape(1, 1, 8, 10))
    out = reverse_transform(padded, [('resize', (2, 3)), ('padding', (6, 8))])
    assert out.dtype == paddle.int64
    # crop -> rows 0..5, cols 0..7; nearest 6x8 -> 2x3 picks rows 0, 3 and
    # cols 0, 2, 5 (floor(i * 8 / 3)).
    np.testing.assert_array_equal(out.numpy()[0, 0],
                                  [[0, 2, 5], [30, 32, 35]])
    up = reverse_transform(ids, [('resize', (6, 8))])
    assert up.shape == [1, 1, 6, 8]
    # 2x nearest upsampling repeats every value in a 2x2 block.
    np.testing.assert_array_equal(up.numpy()[0, 0],
                                  np.arange(12).reshape(3, 4).repeat(
                                      2, 0).repeat(2, 1))


def test_reverse_transform_bilinear_and_collated_info():
    x = paddle.to_tensor(np.array([[[[0., 2.], [4., 6.]]]], np.float32))
    info = [['resize', [paddle.to_tensor([4]), paddle.to_tensor([4])]]]
    out = reverse_transform(x, info, mode='bilinear').numpy()[0, 0]
    # align_corners=False, 2 -> 4: source x = (i + 0.5) / 2 - 0.5, clamped.
    np.testing.assert_allclose(out[0], [0, 0.5, 1.5, 2])
    np.testing.assert_allclose(out[:, 0], [0, 1, 3, 4])
    with pytest.raises(ValueError, match="Unknown trans_info op 'rotate'"):
        reverse_transform(x, [('rotate', (1, 1))])


def test_inference_upsamples_small_output_and_reverses():
    class Half(paddle.nn.Layer):
        def forward(self, x):
            return [paddle.nn.functional.avg_pool2d(x, 2)]

    x = paddle.ones([1, 3, 6, 8])
    out = inference(Half(), x)
    assert out.shape == [1, 3, 6, 8]
    np.testing.assert_allclose(out.numpy(), 1.0, rtol=1e-6)
    out = inference(Half(), x, trans_info=[('padding', (5, 7))])
    assert out.shape == [1, 3, 5, 7]


@pytest.mark.parametrize('size, crop, stride', [
    ((37, 29), (10, 8), (7, 5)),    # odd sizes, overlapping windows
    ((17, 23), (23, 17), (5, 5)),   # one window fits exactly
    ((9, 11), (16, 16), (8, 8)),    # image smaller than the window
    ((20, 13), (6, 4), (6, 4)),     # stride equal to the window
])
def test_slide_equals_whole_for_a_per_pixel_model(size, crop, stride):
    model = PerPixel()
    x = paddle.randn([2, 3, *size])
    with paddle.no_grad():
        whole = inference(model, x).numpy()
        slide = slide_inference(model, x, crop, stride).numpy()
    assert slide.shape == whole.shape == (2, 4, *size)
    np.testing.assert_allclose(slide, whole, rtol=1e-5, atol=1e-6)


def test_slide_windows_cover_every_pixel_within_crop():
    model = CountCalls()
    with paddle.no_grad():
        slide_inference(model, paddle.zeros([1, 3, 13, 11]), (4, 5), (3, 4))
    # rows: starts 0, 4, 8 (last clamped to 13 - 5); cols: 0, 3, 6, 7.
    assert len(model.shapes) == 3 * 4
    assert set(model.shapes) == {(5, 4)}


def test_slide_argument_errors():
    x = paddle.zeros([1, 3, 8, 8])
    with pytest.raises(ConfigError, match=r'stride \[5, 5\] is larger than '
                                          r'crop_size \[4, 4\]'):
        slide_inference(PerPixel(), x, (4, 4), (5, 5))
    with pytest.raises(ConfigError, match='crop_size must be positive'):
        slide_inference(PerPixel(), x, (0, 4), (1, 1))
    with pytest.raises(ConfigError, match='needs both crop_size and stride'):
        inference(PerPixel(), x, is_slide=True, crop_size=(4, 4))


@pytest.mark.parametrize('combine', ['logits', 'probs'])
def test_aug_flips_of_an_equivariant_model_combine_identical_views(combine):
    model = PerPixel()
    x = paddle.randn([1, 3, 5, 7])
    with paddle.no_grad():
        logit = inference(model, x).numpy()
        both = aug_inference(model, x, None, flip_horizontal=True,
                             flip_vertical=True, combine=combine).numpy()
        plain = aug_inference(model, x, None, combine=combine).numpy()
    # Four identical views: their mean is the logits, their probability sum
    # four times the probabilities.
    one = logit if combine == 'logits' else softmax(logit)
    np.testing.assert_allclose(plain, one, rtol=1e-5, atol=1e-6)
    views = 1 if combine == 'logits' else 4
    np.testing.assert_allclose(both, views * one, rtol=1e-5, atol=1e-6)


def test_aug_flips_are_undone():
    x = paddle.zeros([1, 3, 4, 6])
    with paddle.no_grad():
        base = inference(Pattern(), x).numpy()
        hflip = aug_inference(Pattern(), x, None, flip_horizontal=True)
        vflip = aug_inference(Pattern(), x, None, flip_vertical=True)
        hprob = aug_inference(Pattern(), x, None, flip_horizontal=True,
                              combine='probs')
    np.testing.assert_allclose(hflip.numpy(), (base + base[..., ::-1]) / 2,
                               rtol=1e-5)
    np.testing.assert_allclose(vflip.numpy(),
                               (base + base[:, :, ::-1]) / 2, rtol=1e-5)
    p = softmax(base)
    np.testing.assert_allclose(hprob.numpy(), p + p[..., ::-1], rtol=1e-5)


class Bias(paddle.nn.Layer):
    """Constant logits [1, 0, -1] whatever the input."""

    def forward(self, x):
        n, _, h, w = x.shape
        bias = paddle.to_tensor([1.0, 0.0, -1.0]).reshape([1, 3, 1, 1])
        return [bias.expand([n, 3, h, w])]


def test_aug_scales_and_trans_info():
    model = CountCalls()
    x = paddle.zeros([1, 3, 8, 10])
    with paddle.no_grad():
        aug_inference(model, x, None, scales=[0.5, 1.5])
        out = aug_inference(Bias(), x, [('padding', (7, 9))],
                            scales=[0.5, 1.0, 1.5])
        probs = aug_inference(Bias(), x, [('padding', (7, 9))],
                              scales=[0.5, 1.0, 1.5], combine='probs')
    # Each scale is resized from the input itself (8x10), not from the
    # previous scale's image.
    assert model.shapes == [(4, 5), (12, 15)]
    assert out.shape == probs.shape == [1, 3, 7, 9]
    np.testing.assert_allclose(out.numpy()[0, :, 3, 4], [1.0, 0.0, -1.0],
                               rtol=1e-6)
    expected = 3 * softmax(np.array([[1.0, 0.0, -1.0]]))[0]
    np.testing.assert_allclose(probs.numpy()[0, :, 3, 4], expected,
                               rtol=1e-5)
    with pytest.raises(ConfigError, match='scales must be positive'):
        aug_inference(Bias(), x, None, scales=[])
    with pytest.raises(ConfigError, match="aug_combine .* got 'mean'"):
        aug_inference(Bias(), x, None, combine='mean')


class ByHeight(paddle.nn.Layer):
    """Two-class logits fixed per input height: what a model whose answer
    changes with the scale looks like to the augmentation."""

    TABLE = {4: [10.0, 0.0], 8: [0.0, 2.0], 16: [0.0, 2.0]}

    def forward(self, x):
        n, _, h, w = x.shape
        logit = paddle.to_tensor(self.TABLE[h]).reshape([1, 2, 1, 1])
        return [logit.expand([n, 2, h, w])]


def test_the_two_ways_of_combining_views_by_hand():
    # Views at scales 0.5, 1 and 2 of an 8x8 input give the logits
    # [10, 0], [0, 2] and [0, 2]. PaddleSeg 2.8 averages them: [10/3, 4/3],
    # class 0. PaddleSeg up to 2.7 summed softmax([10, 0]) = [0.99995,
    # 0.0000454] and twice softmax([0, 2]) = [0.11920, 0.88080]:
    # [1.23836, 1.76164], class 1.
    x = paddle.zeros([1, 3, 8, 8])
    with paddle.no_grad():
        mean = aug_inference(ByHeight(), x, None, scales=[0.5, 1.0, 2.0])
        summed = aug_inference(ByHeight(), x, None, scales=[0.5, 1.0, 2.0],
                               combine='probs')
    np.testing.assert_allclose(mean.numpy()[0, :, 5, 2], [10 / 3, 4 / 3],
                               rtol=1e-6)
    e2 = np.exp(2.0)
    by_hand = [1 / (1 + np.exp(-10.0)) + 2 / (1 + e2),
               np.exp(-10.0) / (1 + np.exp(-10.0)) + 2 * e2 / (1 + e2)]
    np.testing.assert_allclose(summed.numpy()[0, :, 5, 2], by_hand,
                               rtol=1e-5)
    np.testing.assert_allclose(by_hand, [1.23836, 1.76164], atol=1e-5)
    assert int(paddle.argmax(mean, axis=1)[0, 5, 2]) == 0
    assert int(paddle.argmax(summed, axis=1)[0, 5, 2]) == 1
    # Probabilities for the AUC: softmax of the mean, or the normalised sum.
    p_mean = to_probabilities(mean, 'logits').numpy()[0, :, 5, 2]
    p_sum = to_probabilities(summed, 'probs').numpy()[0, :, 5, 2]
    np.testing.assert_allclose(p_mean, softmax(np.array([[10 / 3, 4 / 3]]))[0],
                               rtol=1e-5)
    np.testing.assert_allclose(p_sum, np.array(by_hand) / 3, rtol=1e-5)


def test_build_infer_fn_picks_the_path():
    model = PerPixel()
    x = paddle.randn([1, 3, 6, 6])
    with paddle.no_grad():
        plain = build_infer_fn()
        logit = plain(model, x, None).numpy()
        aug = build_infer_fn(aug=True, flip_horizontal=True, is_slide=True,
                             crop_size=(4, 4), stride=(2, 2))
        mean = aug(model, x, None)
        probs = build_infer_fn(aug=True, flip_horizontal=True,
                               aug_combine='probs')(model, x, None)
    assert plain.kind == aug.kind == 'logits'
    np.testing.assert_allclose(logit, inference(model, x).numpy(), rtol=1e-6)
    np.testing.assert_allclose(mean.numpy(), logit, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probs.numpy(), 2 * softmax(logit), rtol=1e-5)
    with pytest.raises(ConfigError, match='aug_combine'):
        build_infer_fn(aug=True, aug_combine='sum')
