"""DiceLoss and BootstrappedCrossEntropyLoss against hand-computed values and
independent numpy implementations."""

import math

import numpy as np
import paddle
import pytest

from paddleseg.models.losses import (BootstrappedCrossEntropyLoss,
                                     CrossEntropyLoss, DiceLoss, MixedLoss)


def np_softmax(x, axis=1):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def np_dice(logit, label, weight=None, smooth=1.0, ignore=255):
    n, c = logit.shape[:2]
    prob = np_softmax(logit.astype('float64')).reshape(n, c, -1)
    label = label.reshape(n, -1)
    mask = (label != ignore)[:, None]
    onehot = np.stack([label == i for i in range(c)], 1) & mask
    prob = prob * mask
    inter, card = (prob * onehot).sum(-1), (prob + onehot).sum(-1)
    per_class = (1 - (2 * inter + smooth) / (card + smooth + 1e-8)).mean(0)
    return (per_class * (1 if weight is None else np.array(weight))).sum() / c


def test_dice_hand_computed():
    # One image, two classes, pixels with class-0 probability 0.9, 0.2, 0.6
    # and labels 0, 1, 0 (a fourth pixel ignored).
    # class 0: intersection 0.9 + 0.6 = 1.5, cardinality 1.7 + 2 = 3.7;
    # class 1: intersection 0.8, cardinality 1.3 + 1 = 2.3.
    p = np.array([0.9, 0.2, 0.6, 0.5])
    logit = np.log(np.stack([p, 1 - p]))[None, :, None, :]
    label = paddle.to_tensor(np.array([[[0, 1, 0, 255]]]))
    d0 = 1 - (2 * 1.5 + 1) / (3.7 + 1 + 1e-8)
    d1 = 1 - (2 * 0.8 + 1) / (2.3 + 1 + 1e-8)
    value = DiceLoss()(paddle.to_tensor(logit.astype('float32')), label)
    assert value.item() == pytest.approx((d0 + d1) / 2, rel=1e-6)
    weighted = DiceLoss(weight=[2.0, 0.5])(
        paddle.to_tensor(logit.astype('float32')), label)
    assert weighted.item() == pytest.approx((2 * d0 + 0.5 * d1) / 2, rel=1e-6)


@pytest.mark.parametrize('kwargs', [{}, {'weight': [0.2, 1.0, 3.0, 1.0],
                                         'smooth': 0.5}])
def test_dice_matches_numpy_batch_and_absent_class(kwargs):
    rng = np.random.RandomState(0)
    logit = (2 * rng.randn(3, 4, 5, 6)).astype('float32')
    label = rng.randint(0, 3, (3, 1, 5, 6))  # class 3 absent, still counted
    label[1, 0, :2] = 255
    value = DiceLoss(**kwargs)(paddle.to_tensor(logit),
                               paddle.to_tensor(label))
    assert value.item() == pytest.approx(np_dice(logit, label, **kwargs),
                                         rel=1e-5)


def test_dice_leaves_its_labels_untouched_and_ce_after_it_unchanged():
    # PaddleSeg's DiceLoss writes 0 over the ignored labels in place, so the
    # CE after it in MixedLoss[Dice, CE] trains them as class 0.
    rng = np.random.RandomState(1)
    logit = paddle.to_tensor((2 * rng.randn(2, 3, 4, 5)).astype('float32'))
    raw = rng.randint(0, 3, (2, 4, 5))
    raw[:, 0] = 255
    label = paddle.to_tensor(raw)
    ce_alone = CrossEntropyLoss()(logit, label).item()
    dice, ce = MixedLoss([DiceLoss(), CrossEntropyLoss()], [1.0, 1.0])(
        logit, label)
    np.testing.assert_array_equal(label.numpy(), raw)
    assert ce.item() == ce_alone
    assert dice.item() == pytest.approx(np_dice(logit.numpy(), raw),
                                        rel=1e-5)


def test_dice_gradient_finite_and_weight_length_checked():
    x = paddle.to_tensor(50 * np.random.RandomState(2).randn(2, 3, 4, 4)
                         .astype('float32'))
    x.stop_gradient = False
    DiceLoss()(x, paddle.full([2, 4, 4], 255, 'int64')).backward()
    assert np.isfinite(x.grad.numpy()).all()
    with pytest.raises(ValueError, match='2 values but the logits have 3'):
        DiceLoss(weight=[1, 1])(x, paddle.zeros([2, 4, 4], 'int64'))


def two_class_logits(p):
    p = np.asarray(p, 'float64')
    return paddle.to_tensor(np.stack([np.log(p), np.log(1 - p)])[None, :, None]
                            .astype('float32'))


P = [0.9, 0.6, 0.3, 0.8, 0.5]
CE = [-math.log(p) for p in P[:4]] + [0.0]  # the last pixel is ignored
LABEL = paddle.to_tensor(np.array([[[0, 0, 0, 0, 255]]]))
# In decreasing order: 1.204 (0.3), 0.511 (0.6), 0.223 (0.8), 0.105 (0.9), 0.


@pytest.mark.parametrize('min_k, th, kept', [
    (1, 0.3, [2, 1]),         # 2nd largest 0.511 > 0.3: all above 0.3
    (3, 0.3, [2, 1, 3]),      # 4th largest 0.105 <= 0.3: the 3 largest
    (4, 0.05, [2, 1, 3, 0]),  # 5th is the ignored pixel's 0: the 4 largest
    (2, 1.5, [2, 1]),         # 3rd 0.223 <= 1.5: the 2 largest
    (0, 0.4, [2, 1]),         # largest 1.204 > 0.4: all above 0.4
])
def test_bootstrapped_ce_hand_computed(min_k, th, kept):
    value = BootstrappedCrossEntropyLoss(min_k, th)(two_class_logits(P), LABEL)
    expected = sum(CE[i] for i in kept) / len(kept)
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_bootstrapped_ce_where_paddleseg_fails():
    # min_K >= pixels: PaddleSeg indexes past the end; here all pixels are
    # averaged (the ignored one as 0, as in its ranking).
    value = BootstrappedCrossEntropyLoss(5, 0.3)(two_class_logits(P), LABEL)
    assert value.item() == pytest.approx(sum(CE) / 5, rel=1e-5)
    # min_K 0 and nothing above the threshold: PaddleSeg's mean of nothing
    # is NaN; here the image adds 0, with a zero gradient.
    x = two_class_logits(P)
    x.stop_gradient = False
    value = BootstrappedCrossEntropyLoss(0, 2.0)(x, LABEL)
    value.backward()
    assert value.item() == 0.0
    np.testing.assert_array_equal(x.grad.numpy(), 0.0)
    with pytest.raises(ValueError, match='min_K must be an integer >= 0'):
        BootstrappedCrossEntropyLoss(-1, 0.3)


def np_bootstrapped(logit, label, k, th, weight=None, ignore=255):
    n, c = logit.shape[:2]
    logp = np.log(np_softmax(logit.astype('float64')))
    total = 0.0
    for i in range(n):
        y = label[i].reshape(-1)
        lp = logp[i].reshape(c, -1)
        safe = np.where(y == ignore, 0, y)
        ce = -lp[safe, np.arange(y.size)] * (y != ignore)
        if weight is not None:
            ce = ce * np.array(weight)[safe]
        ce = np.sort(ce)[::-1]
        total += (ce[ce > th] if ce[k] > th else ce[:k]).mean()
    return total / n


@pytest.mark.parametrize('k, th, weight', [(10, 0.7, None), (30, 0.3, None),
                                           (5, 0.5, [0.2, 1.0, 3.0])])
def test_bootstrapped_ce_per_image_matches_numpy(k, th, weight):
    rng = np.random.RandomState(3)
    logit = (2 * rng.randn(3, 3, 6, 7)).astype('float32')
    label = rng.randint(0, 3, (3, 6, 7))
    label[0, :3] = 255
    loss = BootstrappedCrossEntropyLoss(k, th, weight=weight)
    x = paddle.to_tensor(logit, stop_gradient=False)
    value = loss(x, paddle.to_tensor(label[:, None]))
    assert value.item() == pytest.approx(
        np_bootstrapped(logit, label, k, th, weight), rel=1e-5)
    value.backward()
    assert np.isfinite(x.grad.numpy()).all()
