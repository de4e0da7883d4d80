"""Bootstrapped cross entropy (Wu et al., 2016, "Bridging category-level and
instance-level semantic image segmentation") as PaddleSeg computes it: per
image, the mean over its hardest pixels."""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddleseg.cvlibs import manager
from .cross_entropy_loss import as_label

__all__ = ['BootstrappedCrossEntropyLoss']


@manager.LOSSES.add_component
class BootstrappedCrossEntropyLoss(nn.Layer):
    """Per image, sort the pixels' cross entropies in decreasing order; if the
    ``(min_K + 1)``-th largest exceeds ``loss_th``, average every pixel above
    ``loss_th``, else average the ``min_K`` largest. The loss is the mean of
    the images' averages.

    As in PaddleSeg, an ignored pixel has cross entropy 0 and stays in the
    ranking (it is counted among the ``min_K`` largest when fewer than
    ``min_K`` pixels are valid), and class weights multiply each pixel's
    cross entropy before the ranking while the average stays unweighted.
    Where PaddleSeg fails, this loss averages every pixel when ``min_K`` is
    at least the number of pixels (PaddleSeg indexes past the end), and an
    image that keeps no pixel (``min_K`` 0, none above ``loss_th``; PaddleSeg
    gives NaN) adds 0.

    Args:
        min_K (int): Minimum number of pixels averaged per image.
        loss_th (float): Cross-entropy threshold.
        weight (list[float], optional): One weight per class.
        ignore_index (int): Label value with no loss.
    """

    def __init__(self, min_K, loss_th, weight=None, ignore_index=255):
        super().__init__()
        if int(min_K) != min_K or min_K < 0:
            raise ValueError('BootstrappedCrossEntropyLoss: min_K must be an '
                             'integer >= 0, got {!r}.'.format(min_K))
        self.K = int(min_K)
        self.threshold = float(loss_th)
        self.ignore_index = ignore_index
        self.weight = None if weight is None else paddle.to_tensor(
            weight, dtype='float32')

    def forward(self, logit, label):
        """Args: logit [N, C, H, W]; label [N, H, W] or [N, 1, H, W]."""
        n, c = logit.shape[:2]
        if self.weight is not None and self.weight.shape[0] != c:
            raise ValueError('BootstrappedCrossEntropyLoss.weight has {} '
                             'values but the logits have {} classes.'.format(
                                 self.weight.shape[0], c))
        label = as_label(label, logit).reshape([n, -1])
        valid = label != self.ignore_index
        safe = paddle.where(valid, label, paddle.zeros_like(label))
        flat = logit.astype('float32').reshape([n, c, -1]).transpose(
            [0, 2, 1])
        loss = F.cross_entropy(flat, safe.unsqueeze(-1), reduction='none',
                               axis=-1).squeeze(-1)
        loss = loss * valid.astype('float32')
        if self.weight is not None:
            loss = loss * paddle.gather(self.weight, safe.flatten()).reshape(
                safe.shape)
        ranked = paddle.sort(loss, axis=1, descending=True)
        pixels = ranked.shape[1]
        with paddle.no_grad():
            above = (ranked > self.threshold).astype('int64').sum(axis=1)
            if self.K < pixels:
                mined = ranked[:, self.K] > self.threshold
            else:
                mined = paddle.zeros([n], dtype='bool')
            count = paddle.where(mined, above, paddle.full_like(
                above, min(self.K, pixels)))
            kept = (paddle.arange(pixels, dtype='int64').unsqueeze(0) <
                    count.unsqueeze(1)).astype('float32')
        per_image = (ranked * kept).sum(axis=1) / paddle.clip(
            count.astype('float32'), min=1.0)
        return per_image.mean()
