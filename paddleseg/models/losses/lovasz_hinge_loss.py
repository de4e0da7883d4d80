"""Binary Lovasz hinge loss (Berman et al., CVPR 2018) over the whole batch,
as PaddleSeg computes it."""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddleseg.cvlibs import manager
from .lovasz_softmax_loss import lovasz_flat, valid_pixels

__all__ = ['LovaszHingeLoss', 'binary_channel_to_unary']

_EPS = 1e-9


def binary_channel_to_unary(logit):
    """[N, 2, H, W] logits to the [N, 1, H, W] scores PaddleSeg's hinge loss
    uses: ``log(p1 + eps / (1 - p1 + eps))``, ``p1`` the softmax probability
    of class 1, ``eps = 1e-9``. By operator precedence this is about
    ``log(p1)``, not the logit ``log(p1 / (1 - p1))`` the code seems to
    mean; it is kept for PaddleSeg's values (a confident foreground pixel
    scores ``log 2``, not a large positive number)."""
    p1 = F.softmax(logit, axis=1)[:, 1:2]
    return paddle.log(p1 + _EPS / (1.0 - p1 + _EPS))


@manager.LOSSES.add_component
class LovaszHingeLoss(nn.Layer):
    """Lovasz extension of the Jaccard loss of the foreground applied to the
    hinge errors ``relu(1 - score * (2y - 1))``, all valid pixels of the batch
    together (PaddleSeg's choice; Berman's reference averages per image).

    A batch whose every pixel is ignored gives 0, with a (zero) gradient.

    Args:
        ignore_index (int): Label value left out; the others must be 0 or 1.
    """

    def __init__(self, ignore_index=255):
        super().__init__()
        self.ignore_index = ignore_index

    def forward(self, logit, label):
        """Args: logit [N, 1, H, W] scores, or [N, 2, H, W] two-class
        logits (see :func:`binary_channel_to_unary`); label [N, H, W] or
        [N, 1, H, W] of 0/1."""
        if logit.shape[1] not in (1, 2):
            raise ValueError('LovaszHingeLoss takes logits with 1 or 2 '
                             'channels, got {}.'.format(logit.shape[1]))
        logit = logit.astype('float32')
        score = binary_channel_to_unary(logit) if logit.shape[1] == 2 else \
            logit
        score, label = valid_pixels(score, label, self.ignore_index)
        if label.shape[0] == 0:
            return logit.sum() * 0.0
        score, fg = score.flatten(), label.astype('float32')
        return lovasz_flat(F.relu(1.0 - score * (2.0 * fg - 1.0)), fg)
