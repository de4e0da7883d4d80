"""The training loop: a short generic loop with hooks.

:class:`Trainer` runs ``before_train``, then per iteration ``before_step``,
:meth:`Trainer.run_step` (load a batch, forward, losses, backward, update)
and ``after_step``, and ``after_train`` in a ``finally``. Everything else
(LR schedule, logging, evaluation, VisualDL, checkpoints) is a hook; see
:mod:`paddleseg.core.hooks`. :func:`train` assembles a run from built
components.
"""

import math
import signal
import time

import paddle

from paddleseg.ops.onednn_conv import use_onednn_convolutions
from paddleseg.utils import logger, signals
from paddleseg.utils.errors import ConfigError, StoppedBySignal, TrainingError
from . import run_dir
from .data import RepeatedDataset, build_train_loader, check_batch
from .hooks import build_hooks
from .precision import Precision
from .resume import check_resume, resume_trainer, run_record

__all__ = ['Trainer', 'train', 'compute_losses', 'gradients_finite',
           'to_static', 'TrainingError']


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


def gradients_finite(grads):
    """Whether every element of every tensor in ``grads`` is finite.

    Every step asks, so it is asked cheaply: one sum per tensor, one sum of
    the sums and one sync. A sum is finite when all its terms are, unless
    finite terms overflow float32 (beyond 3.4e38 in all); only a non-finite
    sum pays for the element-wise test that tells the two apart, so the
    answer is exact. (Element-wise on every step, ``isfinite`` and ``all``
    per tensor took 16.5 ms of a 0.9 s CCNet demo step, the sums 7.6 ms:
    ``benchmarks/step_profile.py``. A norm would square the terms and
    overflow at 1.8e19.)
    """
    if not grads:
        return True
    total = paddle.add_n([g.sum() for g in grads])
    if bool(paddle.isfinite(total).item()):
        return True
    return all(bool(paddle.isfinite(g).all().item()) for g in grads)


class Trainer:
    """Runs ``max_iters`` iterations from ``start_iter`` with hooks.

    The trainer's own state is the iteration and the precision policy's
    (loss scaler); every hook adds what it owns (the LR scheduler, the best
    metric so far) through its ``state_dict``, as detectron2's
    ``TrainerBase`` collects its hooks' state. The keys stay flat, so
    ``train_state.json`` keeps one format. It also records the run (model,
    batch size, processes: :mod:`.resume`), so a resume can refuse a
    changed one.

    Training stops at the first loss or gradient that is not finite (one
    sum of sums per step: :func:`gradients_finite`), and between two steps
    when SIGINT or SIGTERM arrives (:mod:`paddleseg.utils.signals`); the
    checkpoints already written stay as they are.

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
        world_size (int): Processes of the run (recorded for resuming).
        repeats (int): Times the training set is repeated per epoch
            (recorded for resuming).

    A hook may end training early with :meth:`request_stop` (early stop,
    the end of a profiling window); the step's remaining hooks still run.
    """

    def __init__(self, model, raw_model, optimizer, losses, loader, max_iters,
                 batch_size, hooks, precision, batches_per_epoch=1,
                 world_size=1, repeats=1):
        self.model = model
        self.raw_model = raw_model
        self.optimizer = optimizer
        self.losses = losses
        self.loader = loader
        self.max_iters = max_iters
        self.batch_size = batch_size
        self.precision = precision
        self.batches_per_epoch = max(1, batches_per_epoch)
        self.world_size = world_size
        self.repeats = repeats
        self.stop_reason = None
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
        state = {'iter': self.iter, 'precision': self.precision.state_dict(),
                 'run': self._run_record()}
        for hook in self.hooks:
            own = hook.state_dict()
            clash = sorted(set(own) & set(state))
            if clash:
                raise KeyError('{} reports state {} that another part of the '
                               'trainer owns.'.format(type(hook).__name__,
                                                      clash))
            state.update(own)
        return state

    def load_state_dict(self, state, source='the checkpoint',
                        allow_changes=False):
        """Take back :meth:`state_dict`; a changed run is refused unless
        ``allow_changes`` (see :func:`.resume.check_resume`)."""
        check_resume(state.get('run'), self._run_record(), source,
                     allow_changes)
        self.start_iter = self.iter = int(state['iter'])
        self.precision.set_state_dict(state.get('precision'))
        for hook in self.hooks:
            hook.load_state_dict(state)

    def _run_record(self):
        return run_record(self.raw_model, self.batch_size, self.world_size,
                          self.repeats)

    def checkpoint_files(self):
        """``{file name: layer}`` the hooks add to each checkpoint folder."""
        files = {}
        for hook in self.hooks:
            own = hook.checkpoint_files()
            clash = sorted(set(own) & (set(files) | {'model.pdparams',
                                                     'model.pdopt'}))
            if clash:
                raise KeyError('{} writes checkpoint files {} that another '
                               'part of the trainer writes.'.format(
                                   type(hook).__name__, clash))
            files.update(own)
        return files

    def load_checkpoint_files(self, ckpt_dir):
        """Give each hook the files it wrote into ``ckpt_dir``."""
        for hook in self.hooks:
            hook.load_checkpoint_files(ckpt_dir)

    def request_stop(self, reason):
        """End training after the current step; ``reason`` is logged."""
        if self.stop_reason is None:
            self.stop_reason = reason
            logger.info(reason)

    def train(self):
        self.model.train()
        self._data = iter(self.loader)
        for hook in self.hooks:
            hook.before_train()
        try:
            with signals.graceful():
                while self.iter < self.max_iters and \
                        self.stop_reason is None:
                    for hook in self.hooks:
                        hook.before_step()
                    self.run_step()
                    for hook in self.hooks:
                        hook.after_step()
                    self._stop_if_signalled()
        finally:
            _shut_down(self._data)
            for hook in self.hooks:
                hook.after_train()

    def _stop_if_signalled(self):
        signum = signals.requested()
        if signum is not None:
            signals.clear()
            raise StoppedBySignal(
                'Stopped by {} after iteration {}; the checkpoints written so '
                'far are intact: resume with `--resume_model auto` (or the '
                'last iter_N folder).'.format(signal.Signals(signum).name,
                                              self.iter), signum)

    def _check_gradients(self, loss):
        """Stop at the first gradient that is not finite, before the update
        spreads it into the weights (a dynamic loss scaler skips such steps
        itself, so it is not checked then)."""
        if self.precision.scaler is not None:
            return
        if not gradients_finite([p.grad for p in self.raw_model.parameters()
                                 if p.grad is not None]):
            raise TrainingError(
                'A gradient became non-finite at iteration {} (the loss was '
                '{:.4g}); training stopped without saving. The last good '
                'checkpoint in save_dir is untouched: lower the learning rate '
                '(or check the labels) and resume from it.'.format(
                    self.iter + 1, loss))

    def run_step(self):
        start = time.perf_counter()
        batch = check_batch(next(self._data))
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
        self.precision.backward(loss)
        self._check_gradients(value)
        self.precision.update(self.optimizer)
        self.iter += 1
        self.loss = value
        self.batch_cost = time.perf_counter() - start


def _shut_down(data):
    """Stop a loader iterator's worker processes and thread now, not when
    the garbage collector gets to it (a stopped run leaves none behind).
    Paddle offers no public call for it; its iterators have this one."""
    shut_down = getattr(data, '_try_shutdown_all', None)
    if shut_down is not None:
        shut_down()


def _scheduler_of(optimizer):
    """The optimizer's LR scheduler when the caller gave none (Paddle keeps
    it in ``_learning_rate``; a plain float means a constant rate)."""
    lr = optimizer._learning_rate
    return lr if isinstance(lr, paddle.optimizer.lr.LRScheduler) else None


def train(model, train_dataset, optimizer, losses, iters, batch_size, save_dir,
          val_dataset=None, resume_model=None, save_interval=1000,
          log_iters=10, num_workers=0, use_vdl=False, keep_checkpoint_max=5,
          do_eval=False, precision='fp32', amp_level='O1', seed=0,
          eval_kwargs=None, lr_scheduler=None, allow_resume_changes=False,
          use_ema=False, early_stop_intervals=None, repeats=1,
          to_static_training=False, profiler_options=None):
    """Train ``model``; see ``train.py --help`` for the arguments' meaning.

    ``lr_scheduler`` is the scheduler the optimizer was built with (stepped
    once per iteration and saved in checkpoints); when None it is taken from
    the optimizer. Rank 0 tidies ``save_dir`` first (:func:`.run_dir.prepare`)
    and, when resuming from a checkpoint older than others there, moves the
    newer ones aside (:func:`.run_dir.move_newer_aside`). ``repeats`` repeats
    the training set in every epoch (:class:`.data.RepeatedDataset`);
    ``to_static_training`` runs the forward pass as a static program
    (:func:`to_static`).

    Returns:
        Trainer: the finished trainer (its ``iter``, ``start_iter``, hooks).
    """
    world_size = paddle.distributed.get_world_size()
    rank = paddle.distributed.get_rank()
    on_gpu = 'gpu' in paddle.get_device()
    amp = Precision(precision, amp_level, on_gpu)
    raw_model = model
    model, optimizer = amp.decorate(model, optimizer)
    loader, sampler = build_train_loader(
        RepeatedDataset.of(train_dataset, repeats), batch_size, seed,
        num_workers, rank, world_size)
    if lr_scheduler is None:
        lr_scheduler = _scheduler_of(optimizer)
    # Before any conversion: the moving average copies the plain model.
    hooks = build_hooks(lr_scheduler, save_dir, save_interval,
                        keep_checkpoint_max, log_iters, val_dataset, do_eval,
                        use_vdl, eval_kwargs, is_writer=rank == 0,
                        ema_model=raw_model if use_ema else None,
                        early_stop_intervals=early_stop_intervals,
                        profiler_options=profiler_options)
    if to_static_training:
        model = to_static(model)
    elif precision == 'fp32':  # CPU only: the function checks the device
        use_onednn_convolutions(model)
    if world_size > 1:
        if on_gpu:
            model = paddle.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        raw_model = model
        model = paddle.DataParallel(model)
    trainer = Trainer(model, raw_model, optimizer, losses, loader, iters,
                      batch_size, hooks, amp, sampler.batches_per_epoch(),
                      world_size, repeats)
    if rank == 0:
        run_dir.prepare(save_dir)
    resume_trainer(trainer, resume_model, save_dir, allow_resume_changes,
                   is_writer=rank == 0)
    sampler.set_position(trainer.iter)
    if trainer.iter >= iters:
        logger.info('The checkpoint is at iteration %d >= iters %d; nothing '
                    'to train.', trainer.iter, iters)
        return trainer
    trainer.train()
    return trainer


def to_static(model):
    """``model`` with its forward pass converted by ``paddle.jit.to_static``
    (PaddleSeg's ``to_static_training``): the same layer and weights, the
    forward run as a static program; losses, backward and the update stay
    in eager mode, as in PaddleSeg."""
    model = paddle.jit.to_static(model)
    logger.info('Training with the forward pass converted to a static '
                'program (to_static_training).')
    return model
