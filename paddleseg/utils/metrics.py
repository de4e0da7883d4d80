"""Segmentation metrics from a confusion matrix, in NumPy.

Evaluation accumulates one ``num_classes x num_classes`` int64 confusion
matrix (rows: ground truth, columns: prediction) over the whole set, and
derives every metric from it at the end, so the result does not depend on
how the set is split into images, batches or ranks.

Absent classes follow the official cityscapesScripts rule: a class that occurs
neither in the ground truth nor in the prediction has no IoU (NaN), is left
out of the means, and is shown as ``-`` in the table.
"""

import math

import numpy as np
from prettytable import PrettyTable

__all__ = ['calculate_confusion', 'metrics_from_confusion', 'format_table',
           'format_summary']


def _as_numpy(x):
    """A NumPy array from a NumPy array or a Paddle tensor."""
    if hasattr(x, 'numpy') and not isinstance(x, np.ndarray):
        x = x.numpy()
    return np.asarray(x)


def calculate_confusion(pred, label, num_classes, ignore_index=255):
    """The confusion matrix of one prediction against its label.

    Args:
        pred (np.ndarray|paddle.Tensor): Predicted class ids, any shape.
        label (np.ndarray|paddle.Tensor): Ground-truth ids, same shape as
            ``pred``; pixels equal to ``ignore_index`` are not counted.
        num_classes (int): Number of classes ``C``.
        ignore_index (int|None): Label value that is not a class.

    Returns:
        np.ndarray: ``(C, C)`` int64, ``conf[i, j]`` = pixels of class ``i``
        predicted as ``j``.

    Raises:
        ValueError: if the shapes differ or a value is out of ``[0, C)``.
    """
    pred = _as_numpy(pred)
    label = _as_numpy(label)
    if pred.shape != label.shape:
        raise ValueError(
            'The prediction has shape {} but the label has shape {}; they '
            'must match.'.format(pred.shape, label.shape))
    pred = pred.reshape(-1).astype(np.int64, copy=False)
    label = label.reshape(-1).astype(np.int64, copy=False)
    if ignore_index is not None:
        keep = label != ignore_index
        pred, label = pred[keep], label[keep]
    for name, values in (('label', label), ('prediction', pred)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            bad = np.unique(values[(values < 0) | (values >= num_classes)])
            raise ValueError(
                'The {} holds class ids {} outside [0, {}) that are not the '
                'ignore index {}; check num_classes and ignore_index.'.format(
                    name, bad[:10].tolist(), num_classes, ignore_index))
    counts = np.bincount(label * num_classes + pred,
                         minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def _divide(num, den):
    """``num / den`` elementwise, NaN where ``den`` is 0."""
    out = np.full(num.shape, np.nan, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _mean(values, present):
    """Mean over present classes; NaN when no class is present."""
    values = values[present]
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float('nan')


def _kappa(conf, total):
    """Cohen's kappa of the confusion matrix."""
    if total == 0:
        return float('nan')
    observed = np.trace(conf) / total
    expected = float(np.dot(conf.sum(1), conf.sum(0))) / float(total) ** 2
    if expected >= 1.0:
        # One class fills both the label and the prediction: the agreement is
        # perfect and chance agreement is 1, so 0/0; report perfect agreement.
        return 1.0
    return float((observed - expected) / (1.0 - expected))


def metrics_from_confusion(conf):
    """All metrics of a confusion matrix.

    Args:
        conf (np.ndarray): ``(C, C)`` counts, rows ground truth.

    Returns:
        dict: ``mIoU``, ``Acc`` (pixel accuracy), ``Kappa``, ``Dice`` (mean
        Dice) as floats, and per-class lists ``class_iou``,
        ``class_precision``, ``class_recall``, ``class_dice`` (NaN where a
        value is undefined, e.g. the IoU of an absent class).
    """
    conf = _as_numpy(conf).astype(np.int64)
    tp = np.diag(conf).astype(np.float64)
    gt = conf.sum(1).astype(np.float64)
    pred = conf.sum(0).astype(np.float64)
    total = int(conf.sum())
    present = (gt + pred) > 0
    iou = _divide(tp, gt + pred - tp)
    dice = _divide(2 * tp, gt + pred)
    return {
        'mIoU': _mean(iou, present),
        'Acc': float(tp.sum() / total) if total else float('nan'),
        'Kappa': _kappa(conf, total),
        'Dice': _mean(dice, present),
        'class_iou': iou.tolist(),
        'class_precision': _divide(tp, pred).tolist(),
        'class_recall': _divide(tp, gt).tolist(),
        'class_dice': dice.tolist(),
    }


def _cell(value):
    if value is None or math.isnan(value):
        return '-'
    return '{:.4f}'.format(value)


def format_table(metrics, class_names=None):
    """A text table of the per-class IoU, precision and recall.

    Args:
        metrics (dict): Output of :func:`metrics_from_confusion`.
        class_names (list[str]|None): Names by class id; ids without a name
            are shown as numbers.

    Returns:
        str: The table (prettytable); undefined values are shown as ``-``.
    """
    table = PrettyTable(['Class', 'Name', 'IoU', 'Precision', 'Recall'])
    names = list(class_names or [])
    for i, (iou, prec, rec) in enumerate(zip(metrics['class_iou'],
                                             metrics['class_precision'],
                                             metrics['class_recall'])):
        name = names[i] if i < len(names) else str(i)
        table.add_row([i, name, _cell(iou), _cell(prec), _cell(rec)])
    table.align['Name'] = 'l'
    return table.get_string()


def format_summary(metrics):
    """``'mIoU: 0.xxxx Acc: 0.xxxx Kappa: 0.xxxx Dice: 0.xxxx'``, then
    ``Auc_roc: 0.xxxx`` when the metrics hold it (as PaddleSeg prints)."""
    keys = ('mIoU', 'Acc', 'Kappa', 'Dice', 'Auc_roc')
    return ' '.join('{}: {:.4f}'.format(k, metrics[k])
                    for k in keys if k in metrics)
