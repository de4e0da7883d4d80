"""Losses against hand-computed values."""

import math

import numpy as np
import paddle
import pytest

from paddleseg.models.losses import (CrossEntropyLoss, MixedLoss,
                                     OhemCrossEntropyLoss)


def two_class_logits(p):
    """(1, 2, 1, W) logits whose softmax gives class 0 probability ``p``."""
    p = np.asarray(p, 'float64')
    logit = np.stack([np.log(p), np.log(1 - p)])[None, :, None, :]
    return paddle.to_tensor(logit.astype('float32'))


P = [0.9, 0.6, 0.3, 0.8, 0.5]
LABEL = paddle.to_tensor(np.array([[[0, 0, 0, 0, 255]]], 'int64'))


def ohem_expected(kept):
    total = sum(-math.log(P[i]) for i in kept)
    n = len(P)
    return (total / n) / (len(kept) / n + OhemCrossEntropyLoss.EPS)


def test_cross_entropy_ignores_and_averages_over_valid():
    loss = CrossEntropyLoss()(two_class_logits(P), LABEL).item()
    assert loss == pytest.approx(-sum(math.log(p) for p in P[:4]) / 4, rel=1e-5)


def test_cross_entropy_class_weights():
    label = paddle.to_tensor(np.array([[[0, 1, 1, 0, 255]]], 'int64'))
    loss = CrossEntropyLoss(weight=[1.0, 3.0])(two_class_logits(P), label)
    terms = [-math.log(0.9), -3 * math.log(0.4), -3 * math.log(0.7),
             -math.log(0.8)]
    assert loss.item() == pytest.approx(sum(terms) / 8, rel=1e-5)


def test_cross_entropy_accepts_n1hw_labels_and_rejects_bad_weight():
    logit = two_class_logits(P)
    a = CrossEntropyLoss()(logit, LABEL).item()
    b = CrossEntropyLoss()(logit, LABEL.unsqueeze(1)).item()
    assert a == b
    with pytest.raises(ValueError, match='3 values but the logits have 2'):
        CrossEntropyLoss(weight=[1, 1, 1])(logit, LABEL)


@pytest.mark.parametrize('min_kept, style, kept', [
    (1, 'paddleseg', [1, 2]),         # threshold stays 0.7: p < 0.7
    (3, 'paddleseg', [1, 2]),         # 3rd smallest 0.8 -> threshold 0.8, strict
    (4, 'paddleseg', [0, 1, 2, 3]),   # min_kept >= valid pixels: all valid kept
    (0, 'paddleseg', [0, 1, 2, 3]),   # min_kept 0: no mining
    (3, 'ccnet', [1, 2, 3]),          # original CCNet repo: p <= threshold
    (0, 'ccnet', [1, 2]),             # original: min_kept 0 -> thresh alone
    (4, 'ccnet', [0, 1, 2, 3]),       # original: min_kept >= valid: all kept
])
def test_ohem_hand_computed(min_kept, style, kept):
    loss = OhemCrossEntropyLoss(thresh=0.7, min_kept=min_kept, style=style,
                                factor=1)
    value = loss(two_class_logits(P), LABEL).item()
    assert value == pytest.approx(ohem_expected(kept), rel=1e-5)


# 4x4 class-0 probabilities; the corners are what a factor-2 threshold
# search sees (bilinear and nearest with aligned corners sample pixels 0, 3).
P44 = np.array([[0.9, 0.75, 0.5, 0.6],
                [0.65, 0.95, 0.85, 0.7],
                [0.55, 0.8, 0.72, 0.4],
                [0.3, 0.78, 0.99, 0.8]])


@pytest.mark.parametrize('min_kept, threshold', [
    (8, 0.7),     # 8 // 4 = 2nd smallest corner 0.6 < 0.7: thresh stays
    (12, 0.8),    # 3rd smallest corner: 0.8
])
def test_ohem_ccnet_style_threshold_from_downsampled_map(min_kept, threshold):
    logit = paddle.to_tensor(np.stack([np.log(P44), np.log(1 - P44)])[None]
                             .astype('float32'))
    label = paddle.zeros([1, 4, 4], 'int64')
    loss = OhemCrossEntropyLoss(thresh=0.7, min_kept=min_kept, style='ccnet',
                                factor=2)(logit, label).item()
    kept = P44[P44 <= threshold]
    expected = -np.log(kept).sum() / 16 / (kept.size / 16 +
                                           OhemCrossEntropyLoss.EPS)
    assert loss == pytest.approx(expected, rel=1e-5)


def test_ohem_bad_style_and_factor():
    with pytest.raises(ValueError, match="style 'mmseg' is not one of"):
        OhemCrossEntropyLoss(style='mmseg')
    with pytest.raises(ValueError, match='factor must be at least 1'):
        OhemCrossEntropyLoss(style='ccnet', factor=0)


def test_ohem_gradient_only_on_kept_pixels():
    logit = two_class_logits(P)
    logit.stop_gradient = False
    OhemCrossEntropyLoss(thresh=0.7, min_kept=1)(logit, LABEL).backward()
    grad = np.abs(logit.grad.numpy()).sum(axis=1).ravel()
    np.testing.assert_array_equal(grad > 0, [False, True, True, False, False])


def test_mixed_loss_weights_each_loss():
    logit = two_class_logits(P)
    ce = CrossEntropyLoss()(logit, LABEL).item()
    ohem = OhemCrossEntropyLoss(min_kept=1)(logit, LABEL).item()
    values = MixedLoss([CrossEntropyLoss(), OhemCrossEntropyLoss(min_kept=1)],
                       [0.5, 2.0])(logit, LABEL)
    assert [v.item() for v in values] == pytest.approx([0.5 * ce, 2 * ohem],
                                                       rel=1e-6)
    with pytest.raises(ValueError, match='2 losses but 1 coef'):
        MixedLoss([CrossEntropyLoss(), CrossEntropyLoss()], [1.0])
