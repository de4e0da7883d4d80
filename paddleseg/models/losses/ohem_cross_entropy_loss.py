"""Online hard example mining cross entropy (Wu et al., 2016) as PaddleSeg
computes it, with the original CCNet repository's variant as an option."""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddleseg.cvlibs import manager
from .cross_entropy_loss import as_label

__all__ = ['OhemCrossEntropyLoss']


@manager.LOSSES.add_component
class OhemCrossEntropyLoss(nn.Layer):
    """Cross entropy over the hard pixels of the batch.

    A pixel is hard when the predicted probability of its true class is below
    a threshold. The threshold is ``thresh``, raised to the ``min_kept``-th
    smallest true-class probability in the batch when that is larger, so at
    least about ``min_kept`` pixels stay. When the batch has no more than
    ``min_kept`` valid pixels, or ``min_kept`` is 0, all valid pixels are
    kept.

    PaddleSeg (default, ``keep_equal=False``) keeps pixels strictly below the
    threshold, so the ``min_kept``-th pixel itself is dropped, and divides
    the summed loss by the number of kept pixels. The original CCNet
    repository keeps pixels at or below it: set ``keep_equal: True`` (and
    ``min_kept: 100000``, ``thresh: 0.7``) for that behaviour.

    Args:
        thresh (float): Probability threshold.
        min_kept (int): Minimum number of pixels kept.
        ignore_index (int): Label value that is never kept.
        keep_equal (bool): Keep pixels equal to the threshold.
    """

    EPS = 1e-5

    def __init__(self, thresh=0.7, min_kept=10000, ignore_index=255,
                 keep_equal=False):
        super().__init__()
        self.thresh = thresh
        self.min_kept = int(min_kept)
        self.ignore_index = ignore_index
        self.keep_equal = keep_equal

    def _kept_mask(self, logit, label, valid):
        """Boolean (N*H*W,) mask of the pixels the loss averages over."""
        num_valid = int(valid.astype('int64').sum().item())
        if self.min_kept <= 0 or self.min_kept >= num_valid:
            return valid
        with paddle.no_grad():
            prob = F.softmax(logit.astype('float32'), axis=1)
            prob = prob.transpose([0, 2, 3, 1]).reshape([-1, logit.shape[1]])
            safe = paddle.where(valid, label, paddle.zeros_like(label))
            true_prob = paddle.take_along_axis(prob, safe.unsqueeze(1),
                                               axis=1).squeeze(1)
            # Ignored pixels sort last and are never kept.
            true_prob = paddle.where(valid, true_prob,
                                     paddle.full_like(true_prob, 2.0))
            k = min(true_prob.shape[0], self.min_kept)
            kth = paddle.sort(true_prob)[k - 1].item()
            threshold = max(self.thresh, kth)
            keep = true_prob <= threshold if self.keep_equal else (
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
