"""The binned ROC AUC of val.py --auc_roc against cases computed by hand and
against the exact Mann-Whitney statistic."""

import numpy as np
import pytest

from paddleseg.utils.roc import RocAccumulator


def test_two_classes_by_hand():
    # Four pixels, labels 0 0 1 1, probability of class 1: 0.1 0.6 0.4 0.9.
    # Pairs (class-1 pixel, class-0 pixel) ranked right: (0.4, 0.1),
    # (0.9, 0.1), (0.9, 0.6); wrong: (0.4, 0.6). AUC = 3/4 for class 1 and,
    # with p0 = 1 - p1, the same for class 0.
    p1 = np.array([[0.1, 0.6], [0.4, 0.9]])
    label = np.array([[0, 0], [1, 1]])
    roc = RocAccumulator(2, bins=100)
    roc.add(np.stack([1 - p1, p1]), label)
    np.testing.assert_allclose(roc.class_auc(), [0.75, 0.75])
    assert roc.auc() == pytest.approx(0.75)


def test_ties_count_half_and_ignored_pixels_are_left_out():
    # Class 1 scores 0.5 on all pixels: every pair is a tie, AUC 1/2. The
    # ignored pixel (label 255) would otherwise be a class-0 pixel.
    probs = np.full((2, 1, 5), 0.5)
    label = np.array([[0, 1, 0, 1, 255]])
    roc = RocAccumulator(2, ignore_index=255, bins=10)
    roc.add(probs, label)
    assert roc.hist.sum() == 2 * 4
    np.testing.assert_allclose(roc.class_auc(), [0.5, 0.5])


def test_three_classes_average_over_present_classes():
    # Class 2 never occurs: left out of the mean. Class 0 is separated
    # perfectly (AUC 1), class 1 perfectly wrong (AUC 0).
    probs = np.array([[[0.9, 0.8, 0.1, 0.2]],    # class 0
                      [[0.6, 0.7, 0.2, 0.1]],    # class 1
                      [[0.0, 0.0, 0.0, 0.0]]])   # class 2
    label = np.array([[0, 0, 1, 1]])
    roc = RocAccumulator(3, bins=1000)
    roc.add(probs, label)
    auc = roc.class_auc()
    assert auc[0] == 1.0 and auc[1] == 0.0 and np.isnan(auc[2])
    assert roc.auc() == 0.5


def _exact_auc(scores, positive):
    """Mann-Whitney: P(score of a positive > score of a negative), ties 1/2."""
    pos, neg = scores[positive], scores[~positive]
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return (greater + 0.5 * ties) / (pos.size * neg.size)


def test_many_pixels_match_the_exact_statistic():
    rng = np.random.RandomState(0)
    label = rng.randint(0, 3, (2, 30, 40))
    logits = rng.randn(2, 3, 30, 40) + 1.5 * np.eye(3)[label].transpose(
        0, 3, 1, 2)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    roc = RocAccumulator(3)
    for p, l in zip(probs, label):  # two images, accumulated
        roc.add(p, l)
    flat_p = probs.transpose(1, 0, 2, 3).reshape(3, -1)
    exact = [_exact_auc(flat_p[c], label.ravel() == c) for c in range(3)]
    np.testing.assert_allclose(roc.class_auc(), exact, atol=1e-4)
    assert 0.8 < roc.auc() < 1.0


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match='do not fit 3 classes'):
        RocAccumulator(3).add(np.zeros((2, 4, 4)), np.zeros((4, 4)))
