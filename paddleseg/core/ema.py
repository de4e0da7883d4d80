"""An exponential moving average of the weights (``train.py --use_ema``).

:class:`EMAHook` keeps a copy of the model whose floating-point parameters
and buffers follow PaddleSeg's rule (``paddleseg/utils/ema.py``): it starts
as the weights the run starts from, and after the update of iteration ``t``

    decay = min(1 - 1 / (t + 1), 0.999)
    ema = decay * ema + (1 - decay) * weights

so the first iterations weigh the recent weights more (``decay`` is 0.5 at
``t = 1``). Integer buffers keep the values they were copied with.

The average is part of the training state: each checkpoint folder holds it
as ``ema_model.pdparams`` beside ``model.pdparams`` (written atomically with
the rest, see :func:`paddleseg.core.checkpointer.save_checkpoint`), and a
resumed run reads it back, so a run killed and resumed ends with the same
average as an uninterrupted one. A checkpoint without it (a run trained
without ``--use_ema``) starts the average from the resumed weights, as
PaddleSeg always does. With evaluation the average is evaluated after the
model and :class:`~paddleseg.core.hooks.CheckpointHook` keeps the best one
in ``save_dir/ema_best_model/ema_model.pdparams``.
"""

import copy
import os

import paddle

from paddleseg.utils import logger
from paddleseg.utils.weights import read_state_file
from .hook_base import HookBase, broadcast_buffers
from .val import evaluate

__all__ = ['EMAHook', 'EMA_FILE', 'update_average']

EMA_FILE = 'ema_model.pdparams'
DECAY = 0.999  # PaddleSeg's


def update_average(average, model, step, decay=DECAY):
    """Move ``average`` (a layer) toward ``model``'s weights after the
    update of iteration ``step`` (1 for the first), in place.

    The arithmetic is PaddleSeg's, operation for operation, in the weights'
    own dtype: ``v * decay``, then ``+ (1 - decay) * w``.
    """
    decay = min(1 - 1 / (step + 1), decay)
    current = model.state_dict()
    with paddle.no_grad():
        for name, value in average.state_dict().items():
            if paddle.is_floating_point(value):
                value.scale_(decay)
                value.add_((1.0 - decay) * current[name].detach())


def _copy_weights(average, model):
    """Set ``average``'s floating-point weights to ``model``'s."""
    current = model.state_dict()
    with paddle.no_grad():
        for name, value in average.state_dict().items():
            if paddle.is_floating_point(value):
                paddle.assign(current[name].detach(), value)


class EMAHook(HookBase):
    """Keeps, saves, restores and evaluates the moving average.

    Args:
        model (paddle.nn.Layer): The (unwrapped) model being trained; the
            average is a copy of it, made now (before any static conversion
            or data-parallel wrapping).
        decay (float): The largest decay (PaddleSeg's 0.999).
        val_dataset: Evaluate the average every ``interval`` iterations when
            given.
        interval (int): Evaluation interval (the save interval).
        eval_kwargs (dict): Test-time options of the evaluation.

    Attributes:
        model (paddle.nn.Layer): The average, in eval mode.
        metrics (dict), metrics_iter (int): Its latest evaluation.
    """

    def __init__(self, model, decay=DECAY, val_dataset=None, interval=1000,
                 eval_kwargs=None):
        self.model = copy.deepcopy(model)
        self.model.eval()
        for param in self.model.parameters():
            param.stop_gradient = True
        self.decay = decay
        self.val_dataset = val_dataset
        self.interval = interval
        self.eval_kwargs = eval_kwargs or {}
        self.metrics, self.metrics_iter = {}, -1
        self._restored = False

    def checkpoint_files(self):
        """What each checkpoint folder holds of the average."""
        return {EMA_FILE: self.model}

    def load_checkpoint_files(self, ckpt_dir):
        path = os.path.join(ckpt_dir, EMA_FILE)
        if not os.path.isfile(path):
            logger.warning(
                '%s has no %s (trained without --use_ema); the moving '
                'average starts from the resumed weights, as PaddleSeg does, '
                'and differs from that of an uninterrupted --use_ema run.',
                ckpt_dir, EMA_FILE)
            return
        self.model.set_state_dict(read_state_file(path))
        self._restored = True

    def before_train(self):
        if not self._restored:
            _copy_weights(self.model, self.trainer.raw_model)

    def after_step(self):
        t = self.trainer
        update_average(self.model, t.raw_model, t.iter, self.decay)
        if self.val_dataset is None or not self.due(self.interval):
            return
        broadcast_buffers(self.model)
        self.metrics = evaluate(self.model, self.val_dataset,
                                **self.eval_kwargs)
        self.metrics_iter = t.iter
        logger.info('[EVAL] EMA model, iter %d: mIoU %.4f, Acc %.4f.', t.iter,
                    self.metrics['mIoU'], self.metrics['Acc'])
