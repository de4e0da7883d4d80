"""Lovasz-Softmax loss (Berman et al., CVPR 2018) over the whole batch, as
PaddleSeg computes it, and the Lovasz gradient shared with the hinge loss."""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddleseg.cvlibs import manager

__all__ = ['LovaszSoftmaxLoss', 'lovasz_grad', 'lovasz_flat', 'valid_pixels']


def lovasz_grad(gt_sorted):
    """Gradient of the Lovasz extension of the Jaccard loss with respect to
    errors sorted in decreasing order (Alg. 1 of the paper).

    Args:
        gt_sorted (Tensor): [P] float 0/1 ground truth in that order, P >= 1.
    """
    gts = gt_sorted.sum()
    intersection = gts - paddle.cumsum(gt_sorted, axis=0)
    union = gts + paddle.cumsum(1.0 - gt_sorted, axis=0)  # >= 1 everywhere
    jaccard = 1.0 - intersection / union
    return paddle.concat([jaccard[:1], jaccard[1:] - jaccard[:-1]])


def lovasz_flat(errors, gt):
    """``sum(sorted errors * lovasz_grad(sorted gt))``, errors sorted in
    decreasing order with the public ``paddle.argsort`` (stable, so equal
    errors keep their pixel order; the value does not depend on that order,
    the Lovasz extension being the same for any order of ties).

    Args:
        errors (Tensor): [P] float, P >= 1.
        gt (Tensor): [P] float 0/1.
    """
    perm = paddle.argsort(errors, axis=0, descending=True, stable=True)
    grad = lovasz_grad(paddle.gather(gt, perm)).detach()
    return (paddle.gather(errors, perm) * grad).sum()


def valid_pixels(values, label, ignore_index):
    """``values`` [N, C, H, W] as [P, C] and ``label`` (N, H, W or N, 1, H,
    W) as [P] int64, keeping the pixels whose label is not
    ``ignore_index``."""
    c = values.shape[1]
    values = values.transpose([0, 2, 3, 1]).reshape([-1, c])
    label = label.reshape([-1]).astype('int64')
    keep = paddle.nonzero(label != ignore_index).flatten()
    return paddle.gather(values, keep), paddle.gather(label, keep)


@manager.LOSSES.add_component
class LovaszSoftmaxLoss(nn.Layer):
    """Mean over classes of the Lovasz extension of each class's Jaccard loss
    on the softmax probabilities, all valid pixels of the batch together
    (PaddleSeg has no per-image option).

    A batch whose every pixel is ignored gives 0, with a (zero) gradient.

    Args:
        ignore_index (int): Label value left out.
        classes (str | list[int]): ``'present'`` (the classes that occur in
            the batch's valid labels), ``'all'``, or the classes to average.
    """

    def __init__(self, ignore_index=255, classes='present'):
        super().__init__()
        if not (classes in ('all', 'present') or (
                isinstance(classes, (list, tuple)) and classes)):
            raise ValueError("LovaszSoftmaxLoss: classes must be 'present', "
                             "'all' or a non-empty list of class ids, got "
                             "{!r}.".format(classes))
        self.ignore_index = ignore_index
        self.classes = classes

    def _classes(self, label, num_classes):
        if self.classes == 'all':
            return list(range(num_classes))
        if self.classes == 'present':
            counts = paddle.bincount(label, minlength=num_classes).numpy()
            return [c for c in range(num_classes) if counts[c] > 0]
        return list(self.classes)

    def forward(self, logit, label):
        """Args: logit [N, C, H, W]; label [N, H, W] or [N, 1, H, W]."""
        probs = F.softmax(logit.astype('float32'), axis=1)
        probs, label = valid_pixels(probs, label, self.ignore_index)
        num_classes = probs.shape[1]
        classes = self._classes(label, num_classes) if label.shape[0] else []
        if num_classes == 1 and len(classes) > 1:
            raise ValueError('LovaszSoftmaxLoss: logits with one channel '
                             'allow one class, not {}.'.format(classes))
        if not classes:
            return logit.astype('float32').sum() * 0.0
        losses = []
        for c in classes:
            fg = (label == c).astype('float32')
            pred = probs[:, 0] if num_classes == 1 else probs[:, c]
            losses.append(lovasz_flat((fg - pred).abs(), fg))
        return paddle.stack(losses).mean()
