"""A weighted combination of losses applied to the same output."""

import paddle.nn as nn

from paddleseg.cvlibs import manager

__all__ = ['MixedLoss']


@manager.LOSSES.add_component
class MixedLoss(nn.Layer):
    """Returns ``[coef_i * loss_i(logit, label)]``; the trainer sums them
    (after the output's own ``loss.coef``) and logs each.

    Args:
        losses (list[nn.Layer]): Built losses.
        coef (list[float]): One weight per loss.
    """

    def __init__(self, losses, coef):
        super().__init__()
        if not isinstance(losses, (list, tuple)) or not losses:
            raise ValueError('MixedLoss.losses must be a non-empty list of '
                             'losses.')
        if len(losses) != len(coef):
            raise ValueError('MixedLoss has {} losses but {} coef values; '
                             'give one coef per loss.'.format(
                                 len(losses), len(coef)))
        self.losses = nn.LayerList(losses)
        self.coef = [float(c) for c in coef]

    def forward(self, logit, label):
        return [c * loss(logit, label) for loss, c in zip(self.losses,
                                                          self.coef)]
