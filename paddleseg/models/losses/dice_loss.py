"""Soft Dice loss over the softmax probabilities, as PaddleSeg computes it,
without PaddleSeg's side effect on the labels."""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddleseg.cvlibs import manager
from .cross_entropy_loss import as_label

__all__ = ['DiceLoss']


@manager.LOSSES.add_component
class DiceLoss(nn.Layer):
    """``sum_i w_i * mean_n(1 - (2 |p_i y_i| + smooth) / (|p_i| + |y_i| +
    smooth + eps)) / C``: for each image ``n`` and each of the ``C`` classes
    (all of them, absent ones included), the sums run over the pixels that
    are not ``ignore_index``; ``eps = 1e-8``; ``w_i = 1`` without weights
    (the sum is still divided by ``C``, as in PaddleSeg).

    PaddleSeg's DiceLoss sets the ignored pixels of the label tensor it is
    given to 0 in place, so a loss after it on the same labels (the CE in
    ``MixedLoss[Dice, CE]``, or the next output's loss) trains them as class
    0. This one reads its labels only.

    Args:
        weight (list[float], optional): One weight per class.
        ignore_index (int): Label value left out of every sum.
        smooth (float): Added to numerator and denominator.
    """

    EPS = 1e-8

    def __init__(self, weight=None, ignore_index=255, smooth=1.0):
        super().__init__()
        self.weight = None if weight is None else [float(w) for w in weight]
        self.ignore_index = ignore_index
        self.smooth = smooth

    def forward(self, logit, label):
        """Args: logit [N, C, H, W]; label [N, H, W] or [N, 1, H, W]."""
        n, num_classes = logit.shape[:2]
        if self.weight is not None and len(self.weight) != num_classes:
            raise ValueError('DiceLoss.weight has {} values but the logits '
                             'have {} classes.'.format(len(self.weight),
                                                       num_classes))
        label = as_label(label, logit)
        valid = label != self.ignore_index
        safe = paddle.where(valid, label, paddle.zeros_like(label))
        mask = valid.astype('float32').unsqueeze(1).reshape([n, 1, -1])
        onehot = F.one_hot(safe, num_classes).transpose([0, 3, 1, 2])
        onehot = onehot.reshape([n, num_classes, -1]) * mask
        probs = F.softmax(logit.astype('float32'), axis=1).reshape(
            [n, num_classes, -1]) * mask
        intersection = (probs * onehot).sum(axis=-1)
        cardinality = (probs + onehot).sum(axis=-1)
        dice = 1.0 - (2.0 * intersection + self.smooth) / (
            cardinality + self.smooth + self.EPS)
        per_class = dice.mean(axis=0)
        if self.weight is not None:
            per_class = per_class * paddle.to_tensor(self.weight,
                                                     dtype='float32')
        return per_class.sum() / num_classes
