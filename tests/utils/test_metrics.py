"""Confusion-matrix metrics against hand-computed values."""

import math

import numpy as np
import paddle
import pytest

from paddleseg.utils.metrics import (calculate_confusion, format_summary,
                                     format_table, metrics_from_confusion)

# 2x4 label with one ignored pixel (255) and a prediction, 3 classes.
LABEL = np.array([[0, 0, 1, 255], [2, 2, 1, 0]])
PRED = np.array([[0, 1, 1, 2], [2, 0, 1, 0]])
# (label, pred) pairs left after dropping the ignored pixel:
# (0,0) (0,1) (1,1) (2,2) (2,0) (1,1) (0,0)
CONF = np.array([[2, 1, 0],
                 [0, 2, 0],
                 [1, 0, 1]])


def test_confusion_counts_pairs_and_drops_ignored():
    conf = calculate_confusion(PRED, LABEL, 3, 255)
    np.testing.assert_array_equal(conf, CONF)
    assert conf.dtype == np.int64


def test_confusion_accepts_tensors_and_no_ignore_index():
    conf = calculate_confusion(paddle.to_tensor(PRED), paddle.to_tensor(
        np.where(LABEL == 255, 2, LABEL)), 3, None)
    # The formerly ignored pixel is now (label 2, pred 2).
    np.testing.assert_array_equal(conf, CONF + np.diag([0, 0, 1]))


def test_confusion_rejects_bad_input():
    with pytest.raises(ValueError, match=r'shape \(2, 4\).*shape \(4, 2\)'):
        calculate_confusion(PRED, LABEL.T, 3, 255)
    with pytest.raises(ValueError, match=r'label holds class ids \[7\]'):
        calculate_confusion(PRED, np.where(LABEL == 1, 7, LABEL), 3, 255)
    with pytest.raises(ValueError, match=r'prediction holds class ids \[3\]'):
        calculate_confusion(PRED + 1, LABEL, 3, 255)


def test_metrics_by_hand():
    m = metrics_from_confusion(CONF)
    # tp = [2, 2, 1], ground truth = [3, 2, 2], predicted = [3, 3, 1].
    np.testing.assert_allclose(m['class_iou'], [2 / 4, 2 / 3, 1 / 2])
    np.testing.assert_allclose(m['class_precision'], [2 / 3, 2 / 3, 1.0])
    np.testing.assert_allclose(m['class_recall'], [2 / 3, 1.0, 1 / 2])
    np.testing.assert_allclose(m['class_dice'], [4 / 6, 4 / 5, 2 / 3])
    assert m['mIoU'] == pytest.approx((1 / 2 + 2 / 3 + 1 / 2) / 3)
    assert m['Acc'] == pytest.approx(5 / 7)
    # p_o = 35/49, p_e = (3*3 + 2*3 + 2*1)/49 = 17/49 -> 18/32.
    assert m['Kappa'] == pytest.approx(18 / 32)
    assert m['Dice'] == pytest.approx((4 / 6 + 4 / 5 + 2 / 3) / 3)
    assert all(isinstance(m[k], float) for k in ('mIoU', 'Acc', 'Kappa',
                                                  'Dice'))


def test_absent_class_is_left_out_of_the_means():
    conf = np.zeros((5, 5), np.int64)
    conf[:3, :3] = CONF
    conf[4, 0] = 1  # class 4 is only in the ground truth: IoU 0, counted
    m = metrics_from_confusion(conf)
    assert math.isnan(m['class_iou'][3]) and math.isnan(m['class_dice'][3])
    assert m['class_iou'][4] == 0.0
    # class 0 now has one more false positive: IoU 2/5.
    assert m['mIoU'] == pytest.approx((2 / 5 + 2 / 3 + 1 / 2 + 0) / 4)
    assert m['Dice'] == pytest.approx((4 / 7 + 4 / 5 + 2 / 3 + 0) / 4)
    assert math.isnan(m['class_precision'][4])  # never predicted
    assert m['class_recall'][4] == 0.0


def test_class_only_predicted_counts_with_iou_zero():
    conf = np.array([[3, 1], [0, 0]])
    m = metrics_from_confusion(conf)
    assert m['class_iou'] == [0.75, 0.0]
    assert m['mIoU'] == pytest.approx(0.375)
    assert math.isnan(m['class_recall'][1]) and m['class_precision'][1] == 0


def test_degenerate_matrices():
    perfect = metrics_from_confusion(np.array([[4, 0], [0, 0]]))
    assert perfect['mIoU'] == 1.0 and perfect['Kappa'] == 1.0
    empty = metrics_from_confusion(np.zeros((2, 2), np.int64))
    assert all(math.isnan(empty[k]) for k in ('mIoU', 'Acc', 'Kappa', 'Dice'))
    # Complete disagreement on two balanced classes: kappa -1.
    assert metrics_from_confusion(np.array([[0, 2], [2, 0]]))['Kappa'] == -1.0


def test_table_shows_names_values_and_dashes():
    conf = np.zeros((4, 4), np.int64)
    conf[:3, :3] = CONF
    table = format_table(metrics_from_confusion(conf),
                         ['road', 'car', 'sky', 'bus'])
    rows = [r for r in table.splitlines() if r.startswith('|')][1:]
    cells = [[c.strip() for c in r.strip('|').split('|')] for r in rows]
    assert cells[0] == ['0', 'road', '0.5000', '0.6667', '0.6667']
    assert cells[2] == ['2', 'sky', '0.5000', '1.0000', '0.5000']
    assert cells[3] == ['3', 'bus', '-', '-', '-']
    unnamed = format_table(metrics_from_confusion(conf), ['road'])
    last = unnamed.splitlines()[-2]
    assert [c.strip() for c in last.strip('|').split('|')][:2] == ['3', '3']


def test_summary_line_format():
    m = {'mIoU': 0.5, 'Acc': 2 / 3, 'Kappa': -0.125, 'Dice': 1.0}
    assert format_summary(m) == ('mIoU: 0.5000 Acc: 0.6667 Kappa: -0.1250 '
                                 'Dice: 1.0000')
