"""Evaluate a model on a validation set: one confusion matrix, all metrics.

Every rank of a distributed run takes the samples ``rank::world_size`` and
the confusion matrices are summed with ``all_reduce``, so all ranks return
the same metrics. Rank 0 logs the per-class table, prints the summary as the
last line of stdout, and optionally writes ``metrics.json``.
"""

import math
import os

import numpy as np
import paddle
from tqdm import tqdm

from paddleseg.utils import logger
from paddleseg.utils.errors import DataError
from paddleseg.utils.fileio import atomic_write_json
from paddleseg.utils.metrics import (calculate_confusion, format_summary,
                                     format_table, metrics_from_confusion)
from paddleseg.utils.roc import RocAccumulator
from .data import SafeDataset, check_batch
from .infer import build_infer_fn, to_probabilities

__all__ = ['evaluate']


def _first(batch):
    """collate_fn for batch size 1: the sample itself, uncollated."""
    return batch[0]


def _samples(dataset, indices, num_workers):
    """Iterate ``dataset[i]`` for ``i`` in ``indices``, in worker processes
    when ``num_workers > 0``."""
    if num_workers <= 0:
        return (dataset[i] for i in indices)
    subset = SafeDataset(paddle.io.Subset(dataset, list(indices)))
    loader = paddle.io.DataLoader(subset, batch_size=1, shuffle=False,
                                  num_workers=num_workers, collate_fn=_first,
                                  return_list=True)
    return (check_batch(sample) for sample in loader)


def _predict(model, sample, infer_fn, roc):
    """Class ids ``(H, W)`` of one sample at its label's size; its
    probabilities go to ``roc`` when there is one."""
    im = paddle.to_tensor(np.asarray(sample['img'])[np.newaxis])
    out = infer_fn(model, im, sample.get('trans_info'))
    pred = paddle.argmax(out, axis=1)[0].numpy()
    if roc is not None and pred.shape == np.shape(sample['label']):
        roc.add(to_probabilities(out, infer_fn.kind)[0].numpy(),
                sample['label'])
    return pred


def _confusion(model, dataset, indices, num_workers, infer_fn, show_bar,
               roc=None):
    """Summed confusion matrix of the samples at ``indices`` (and their
    probabilities counted in ``roc``)."""
    n = dataset.num_classes
    conf = np.zeros((n, n), dtype=np.int64)
    bar = tqdm(total=len(indices), desc='eval', unit='img', leave=False,
               dynamic_ncols=True, disable=None if show_bar else True)
    try:
        for sample in _samples(dataset, indices, num_workers):
            pred = _predict(model, sample, infer_fn, roc)
            label = np.asarray(sample['label'])
            if pred.shape != label.shape:
                raise DataError(
                    "The prediction for '{}' is {}x{} (HxW) but its label is "
                    '{}x{}; the val transforms must record every resize and '
                    'padding in trans_info.'.format(
                        sample.get('img_path'), *pred.shape, *label.shape))
            conf += calculate_confusion(pred, label, n, dataset.ignore_index)
            bar.update(1)
    finally:
        bar.close()
    return conf


def _all_reduce(conf):
    """Sum an int64 array (confusion matrix, histograms) over all ranks."""
    tensor = paddle.to_tensor(conf, dtype='int64')
    paddle.distributed.all_reduce(tensor)
    return tensor.numpy()


def _json_safe(value):
    """NaN -> None (strict JSON has no NaN), recursively through lists."""
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _write_metrics(save_dir, metrics, class_names):
    """Write ``save_dir/metrics.json`` atomically (temp file, then rename)."""
    os.makedirs(save_dir, exist_ok=True)
    path = os.path.join(save_dir, 'metrics.json')
    payload = {k: _json_safe(v) for k, v in metrics.items()}
    if class_names:
        payload['class_names'] = list(class_names)
    atomic_write_json(path, payload)
    return path


def _report(metrics, dataset, num_images, print_detail, save_dir):
    """Rank 0's output: table, metrics.json, and the summary line last."""
    class_names = getattr(dataset, 'CLASS_NAMES', None)
    if print_detail:
        logger.info('[EVAL] %d images, %d classes.\n%s', num_images,
                    dataset.num_classes, format_table(metrics, class_names))
    if save_dir:
        path = _write_metrics(save_dir, metrics, class_names)
        logger.info('[EVAL] Wrote %s.', path)
    print(format_summary(metrics), flush=True)


def evaluate(model, eval_dataset, aug_eval=False, scales=1.0,
             flip_horizontal=False, flip_vertical=False, is_slide=False,
             stride=None, crop_size=None, num_workers=0, print_detail=True,
             save_dir=None, aug_combine='logits', auc_roc=False):
    """Evaluate ``model`` on ``eval_dataset`` (batch size 1).

    Args:
        model (paddle.nn.Layer): The model, possibly ``paddle.DataParallel``;
            its training flag is restored afterwards.
        eval_dataset: Samples are dicts with ``img`` (CHW float32), ``label``
            (HW int64 at the original size) and ``trans_info``; it has
            ``num_classes``, ``ignore_index`` and optionally ``CLASS_NAMES``.
        aug_eval (bool): Use test-time augmentation (:func:`aug_inference`).
        scales (float|list[float]): Scales of the augmentation.
        flip_horizontal (bool): Add horizontal flips to the augmentation.
        flip_vertical (bool): Add vertical flips to the augmentation.
        is_slide (bool): Sliding-window inference.
        stride (tuple): Sliding-window step ``(w, h)``.
        crop_size (tuple): Sliding-window size ``(w, h)``.
        num_workers (int): DataLoader worker processes (0: load in-process).
        print_detail (bool): Log the per-class table.
        save_dir (str|None): Rank 0 also writes ``save_dir/metrics.json``.
        aug_combine (str): How the augmentation combines its views:
            ``'logits'`` (their mean, PaddleSeg 2.8) or ``'probs'`` (the sum
            of their probabilities, PaddleSeg up to 2.7).
        auc_roc (bool): Also compute the area under the ROC curve of the
            pixels' class probabilities (:mod:`paddleseg.utils.roc`).

    Returns:
        dict: ``mIoU``, ``Acc``, ``Kappa``, ``Dice`` (floats), ``Auc_roc``
        with ``auc_roc``, and the lists ``class_iou``, ``class_precision``,
        ``class_recall``, ``class_dice`` (NaN where undefined).
    """
    rank = paddle.distributed.get_rank()
    world_size = paddle.distributed.get_world_size()
    indices = list(range(rank, len(eval_dataset), world_size))
    infer_fn = build_infer_fn(aug_eval, scales, flip_horizontal,
                              flip_vertical, is_slide, stride, crop_size,
                              aug_combine)
    roc = (RocAccumulator(eval_dataset.num_classes, eval_dataset.ignore_index)
           if auc_roc else None)
    was_training = model.training
    model.eval()
    try:
        with paddle.no_grad():
            conf = _confusion(model, eval_dataset, indices, num_workers,
                              infer_fn, show_bar=rank == 0, roc=roc)
    finally:
        if was_training:
            model.train()
    if world_size > 1:
        conf = _all_reduce(conf)
        if roc is not None:
            roc.hist = _all_reduce(roc.hist)
    metrics = metrics_from_confusion(conf)
    if roc is not None:
        metrics['Auc_roc'] = roc.auc()
    if rank == 0:
        _report(metrics, eval_dataset, len(eval_dataset), print_detail,
                save_dir)
    return metrics
