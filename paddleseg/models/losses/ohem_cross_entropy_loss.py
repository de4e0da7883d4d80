"""Online hard example mining cross entropy (Wu et al., 2016) as PaddleSeg
computes it, with the original CCNet repository's variant as an option."""

import math

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddleseg.cvlibs import manager
from .cross_entropy_loss import as_label

__all__ = ['OhemCrossEntropyLoss']


STYLES = ('paddleseg', 'ccnet')


def _aligned_nearest(size_in, size_out):
    """Source indices of a nearest-neighbour resize with aligned corners
    (``scipy.ndimage.zoom(order=0)``'s grid)."""
    if size_out == 1:
        return [0]
    scale = (size_in - 1) / (size_out - 1)
    return [int(math.floor(i * scale + 0.5)) for i in range(size_out)]


@manager.LOSSES.add_component
class OhemCrossEntropyLoss(nn.Layer):
    """Cross entropy over the hard pixels of the batch.

    A pixel is hard when the predicted probability of its true class is below
    a threshold. The threshold is ``thresh``, raised to the ``min_kept``-th
    smallest true-class probability in the batch when that is larger, so at
    least about ``min_kept`` pixels stay. The loss is the mean cross entropy
    of the kept pixels.

    ``style: paddleseg`` (default) is PaddleSeg 2.8's loss, value for value:
    the threshold comes from the whole batch, pixels strictly below it are
    kept (so the ``min_kept``-th pixel itself is dropped), and every valid
    pixel is kept when ``min_kept`` is 0 or at least the number of valid
    pixels. PaddleSeg's CCNet recipe uses ``thresh: 0.7, min_kept: 10000``.

    ``style: ccnet`` is the original CCNet repository's ``--ohem 1
    --ohem-thres 0.7 --ohem-keep 100000``: the threshold is searched on
    probabilities and labels downsampled by ``factor`` (8 there; bilinear
    probabilities, nearest labels, corners aligned) with ``min_kept //
    factor**2`` pixels, then pixels at or below it are kept at full
    resolution; ``min_kept`` 0 means the threshold is ``thresh``. The
    original downsamples with ``scipy.ndimage.zoom``, whose sampling grid
    differs slightly from ``F.interpolate``, so the threshold can differ in
    the last digits.

    Args:
        thresh (float): Probability threshold.
        min_kept (int): Minimum number of pixels kept.
        ignore_index (int): Label value that is never kept.
        style (str): ``'paddleseg'`` or ``'ccnet'`` (see above).
        factor (int): ``style: ccnet`` only: downsampling of the threshold
            search.
    """

    EPS = 1e-5

    def __init__(self, thresh=0.7, min_kept=10000, ignore_index=255,
                 style='paddleseg', factor=8):
        super().__init__()
        if style not in STYLES:
            raise ValueError('OhemCrossEntropyLoss: style {!r} is not one of '
                             '{}.'.format(style, ', '.join(STYLES)))
        if int(factor) < 1:
            raise ValueError('OhemCrossEntropyLoss: factor must be at least '
                             '1, got {}.'.format(factor))
        self.thresh = thresh
        self.min_kept = int(min_kept)
        self.ignore_index = ignore_index
        self.style = style
        self.factor = int(factor) if style == 'ccnet' else 1

    def _true_prob(self, prob, label, valid):
        """(M,) probability of each pixel's label; 2.0 where not valid, so
        ignored pixels sort last and are never kept."""
        prob = prob.transpose([0, 2, 3, 1]).reshape([-1, prob.shape[1]])
        safe = paddle.where(valid, label, paddle.zeros_like(label))
        true_prob = paddle.take_along_axis(prob, safe.unsqueeze(1),
                                           axis=1).squeeze(1)
        return paddle.where(valid, true_prob, paddle.full_like(true_prob, 2.0))

    def _search_map(self, label, valid, shape):
        """Labels, valid mask and ``min_kept`` of the map the threshold is
        searched on, and its (H, W): the batch itself, or (``style: ccnet``)
        its labels downsampled by ``factor``."""
        if self.factor == 1:
            return label, valid, self.min_kept, None
        n, _, h, w = shape
        size = [max(1, int(round(h / self.factor))),
                max(1, int(round(w / self.factor)))]
        rows, cols = (paddle.to_tensor(_aligned_nearest(i, o))
                      for i, o in ((h, size[0]), (w, size[1])))
        label = label.reshape([n, h, w]).index_select(rows, axis=1)
        label = label.index_select(cols, axis=2).flatten()
        return (label, label != self.ignore_index,
                self.min_kept // self.factor**2, size)

    def _mines(self, min_kept, num_valid):
        """Whether hard pixels are mined at all (else every valid one is
        kept)."""
        if self.style == 'paddleseg':
            return 0 < min_kept < num_valid
        return 0 < num_valid and min_kept < num_valid

    def _kept_mask(self, logit, label, valid):
        """Boolean (N*H*W,) mask of the pixels the loss averages over."""
        with paddle.no_grad():
            s_label, s_valid, min_kept, size = self._search_map(
                label, valid, logit.shape)
            if not self._mines(min_kept,
                               int(s_valid.astype('int64').sum().item())):
                return valid
            prob = F.softmax(logit.astype('float32'), axis=1)
            true_prob = self._true_prob(prob, label, valid)
            threshold = self.thresh
            if min_kept > 0:
                search = true_prob if size is None else self._true_prob(
                    F.interpolate(prob, size, mode='bilinear',
                                  align_corners=True), s_label, s_valid)
                kth = paddle.sort(search)[min(search.shape[0], min_kept) - 1]
                threshold = max(self.thresh, kth.item())
            keep = true_prob <= threshold if self.style == 'ccnet' else (
                true_prob < threshold)
        return paddle.logical_and(keep, valid)

    def forward(self, logit, label):
        label = as_label(label, logit).flatten()
        valid = label != self.ignore_index
        kept = self._kept_mask(logit, label, valid)
        safe = paddle.where(kept, label, paddle.zeros_like(label))
        flat = logit.transpose([0, 2, 3, 1]).reshape([-1, logit.shape[1]])
        loss = F.cross_entropy(flat.astype('float32'), safe.unsqueeze(1),
                               reduction='none', axis=1).squeeze(1)
        kept_f = kept.astype('float32')
        return (loss * kept_f).mean() / (kept_f.mean() + self.EPS)
