"""The training loop: a short generic loop with hooks.

:class:`Trainer` runs ``before_train``, then per iteration ``before_step``,
:meth:`Trainer.run_step` (load a batch, forward, losses, backward, update)
and ``after_step``, and ``after_train`` in a ``finally``. Everything else
(LR schedule, logging, evaluation, VisualDL, checkpoints) is a hook; see
:mod:`paddleseg.core.hooks`. :func:`train` assembles a run from built
components.
"""

import math
import time

import paddle

from paddleseg.utils import logger
from paddleseg.utils.errors import ConfigError, SegError
from . import checkpointer
from .data import build_train_loader
from .hooks import build_hooks
from .precision import Precision

__all__ = ['Trainer', 'train', 'compute_losses', 'TrainingError']


class TrainingError(SegError):
    """Training cannot go on (e.g. the loss stopped being finite)."""


def compute_losses(logits_list, label, losses):
    """One loss per model output, weighted by ``coef``; returns a list.

    A loss may return a list (``MixedLoss``); each element is weighted by the
    output's coefficient.
    """
    types, coef = losses['types'], losses['coef']
    if len(logits_list) != len(types):
        raise ConfigError(
            'The model returns {} outputs in training but loss.types has {} '
            'entries; give one loss (and one coef) per output.'.format(
                len(logits_list), len(types)))
    out = []
    for logit, loss_fn, c in zip(logits_list, types, coef):
        value = loss_fn(logit, label)
        values = value if isinstance(value, (list, tuple)) else [value]
        out.extend(c * v for v in values)
    return out


class Trainer:
    """Runs ``max_iters`` iterations from ``start_iter`` with hooks.

    The trainer's own state is the iteration and the precision policy's
    (loss scaler); every hook adds what it owns (the LR scheduler, the best
    metric so far) through its ``state_dict``, as detectron2's
    ``TrainerBase`` collects its hooks' state. The keys stay flat, so
    ``train_state.pkl`` keeps one format.

    Args:
        model (paddle.nn.Layer): The model being trained (possibly wrapped in
            ``paddle.DataParallel``).
        raw_model (paddle.nn.Layer): The unwrapped model, whose state dict
            is saved.
        optimizer (paddle.optimizer.Optimizer): Optimizer with its scheduler.
        losses (dict): ``{'types': [...], 'coef': [...]}``.
        loader: Infinite iterable of batches (dicts with ``img``, ``label``).
        max_iters (int): Last iteration number.
        batch_size (int): Samples per iteration on this rank (for ips).
        hooks (list[HookBase]): In the order they run.
        precision (Precision): Forward/backward policy.
        batches_per_epoch (int): For the epoch shown in logs.
    """

    def __init__(self, model, raw_model, optimizer, losses, loader, max_iters,
                 batch_size, hooks, precision, batches_per_epoch=1):
        self.model = model
        self.raw_model = raw_model
        self.optimizer = optimizer
        self.losses = losses
        self.loader = loader
        self.max_iters = max_iters
        self.batch_size = batch_size
        self.precision = precision
        self.batches_per_epoch = max(1, batches_per_epoch)
        self.hooks = hooks
        for hook in hooks:
            hook.trainer = self
        self.start_iter = self.iter = 0
        self.loss = self.lr = float('nan')
        self.batch_cost = self.reader_cost = 0.0
        # The latest evaluation, for the hooks after the one that ran it.
        self.metrics, self.metrics_iter = {}, -1

    @property
    def epoch(self):
        return (self.iter - 1) // self.batches_per_epoch + 1

    def state_dict(self):
        """What a checkpoint needs besides model and optimizer weights: the
        iteration (which is also the data position), the precision policy's
        state and each hook's."""
        state = {'iter': self.iter, 'precision': self.precision.state_dict()}
        for hook in self.hooks:
            own = hook.state_dict()
            clash = sorted(set(own) & set(state))
            if clash:
                raise KeyError('{} reports state {} that another part of the '
                               'trainer owns.'.format(type(hook).__name__,
                                                      clash))
            state.update(own)
        return state

    def load_state_dict(self, state):
        self.start_iter = self.iter = int(state['iter'])
        self.precision.set_state_dict(state.get('precision'))
        for hook in self.hooks:
            hook.load_state_dict(state)

    def train(self):
        self.model.train()
        self._data = iter(self.loader)
        for hook in self.hooks:
            hook.before_train()
        try:
            while self.iter < self.max_iters:
                for hook in self.hooks:
                    hook.before_step()
                self.run_step()
                for hook in self.hooks:
                    hook.after_step()
        finally:
            for hook in self.hooks:
                hook.after_train()

    def run_step(self):
        start = time.perf_counter()
        batch = next(self._data)
        self.reader_cost = time.perf_counter() - start
        self.lr = self.optimizer.get_lr()
        with self.precision.autocast():
            logits = self.model(batch['img'])
            loss = paddle.add_n(
                compute_losses(logits, batch['label'], self.losses))
        value = loss.item()
        if not math.isfinite(value):
            raise TrainingError(
                'The loss became {} at iteration {}; training stopped without '
                'saving. The last good checkpoint in save_dir is untouched: '
                'lower the learning rate (or check the labels) and resume '
                'from it.'.format(value, self.iter + 1))
        self.precision.step(loss, self.optimizer)
        self.iter += 1
        self.loss = value
        self.batch_cost = time.perf_counter() - start


def _scheduler_of(optimizer):
    """The optimizer's LR scheduler when the caller gave none (Paddle keeps
    it in ``_learning_rate``; a plain float means a constant rate)."""
    lr = optimizer._learning_rate
    return lr if isinstance(lr, paddle.optimizer.lr.LRScheduler) else None


def train(model, train_dataset, optimizer, losses, iters, batch_size, save_dir,
          val_dataset=None, resume_model=None, save_interval=1000,
          log_iters=10, num_workers=0, use_vdl=False, keep_checkpoint_max=5,
          do_eval=False, precision='fp32', amp_level='O1', seed=0,
          eval_kwargs=None, lr_scheduler=None):
    """Train ``model``; see ``train.py --help`` for the arguments' meaning.

    ``lr_scheduler`` is the scheduler the optimizer was built with (stepped
    once per iteration and saved in checkpoints); when None it is taken from
    the optimizer.

    Returns:
        Trainer: the finished trainer (its ``iter``, ``start_iter``, hooks).
    """
    world_size = paddle.distributed.get_world_size()
    rank = paddle.distributed.get_rank()
    on_gpu = 'gpu' in paddle.get_device()
    amp = Precision(precision, amp_level, on_gpu)
    raw_model = model
    model, optimizer = amp.decorate(model, optimizer)
    if world_size > 1:
        if on_gpu:
            model = paddle.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        raw_model = model
        model = paddle.DataParallel(model)
    loader, sampler = build_train_loader(train_dataset, batch_size, seed,
                                         num_workers, rank, world_size)
    if lr_scheduler is None:
        lr_scheduler = _scheduler_of(optimizer)
    hooks = build_hooks(lr_scheduler, save_dir, save_interval,
                        keep_checkpoint_max, log_iters, val_dataset, do_eval,
                        use_vdl, eval_kwargs, is_writer=rank == 0)
    trainer = Trainer(model, raw_model, optimizer, losses, loader, iters,
                      batch_size, hooks, amp, sampler.batches_per_epoch())
    if resume_model == 'auto':
        resume_model = checkpointer.latest_checkpoint(save_dir)
        if resume_model is None:
            logger.info('No checkpoint in %s to resume from; starting at '
                        'iteration 0.', save_dir)
    if resume_model:
        state = checkpointer.load_checkpoint(resume_model, raw_model, optimizer)
        trainer.load_state_dict(state)
        logger.info('Resumed from %s at iteration %d.', resume_model,
                    trainer.iter)
    sampler.set_position(trainer.iter)
    if trainer.iter >= iters:
        logger.info('The checkpoint is at iteration %d >= iters %d; nothing '
                    'to train.', trainer.iter, iters)
        return trainer
    trainer.train()
    return trainer
