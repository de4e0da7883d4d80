"""Early stop (``train.py --early_stop_intervals N``): a hook that ends
training when the evaluations stop improving."""

from .hook_base import HookBase

__all__ = ['EarlyStopHook']


class EarlyStopHook(HookBase):
    """Stops training after ``patience`` evaluations in a row without a
    better mIoU than the best so far (``train.py --early_stop_intervals``),
    with a message; the checkpoint of that iteration is still written. Its
    count and best are part of the training state, so a resumed run stops
    where an uninterrupted one would (and one resumed from an early-stopped
    checkpoint stops at once, unless ``patience`` was raised).

    PaddleSeg counts only evaluations worse than the best (an equal mIoU
    neither counts nor resets); here an equal one counts, as not better.
    """

    def __init__(self, patience):
        self.patience = int(patience)
        self.best_miou, self.best_iter, self.count = -1.0, -1, 0

    def state_dict(self):
        return {'early_stop_count': self.count,
                'early_stop_best_miou': self.best_miou,
                'early_stop_best_iter': self.best_iter}

    def load_state_dict(self, state):
        self.count = int(state.get('early_stop_count', 0))
        self.best_miou = state.get('early_stop_best_miou',
                                   state.get('best_miou', -1.0))
        self.best_iter = state.get('early_stop_best_iter',
                                   state.get('best_iter', -1))

    def before_train(self):
        if self.count >= self.patience:
            self._stop()

    def after_step(self):
        t = self.trainer
        if t.metrics_iter != t.iter:
            return
        miou = t.metrics.get('mIoU', float('nan'))
        if miou > self.best_miou:
            self.best_miou, self.best_iter, self.count = miou, t.iter, 0
            return
        self.count += 1
        if self.count >= self.patience:
            self._stop()

    def _stop(self):
        self.trainer.request_stop(
            'Early stop at iteration {}: {} evaluation(s) in a row without a '
            'better mIoU than {:.4f} (iteration {}); --early_stop_intervals '
            'is {}.'.format(self.trainer.iter, self.count, self.best_miou,
                            self.best_iter, self.patience))
