"""Training hooks: everything the loop does besides forward, backward and step.

A hook (:class:`~.hook_base.HookBase`) implements any of ``before_train``,
``before_step``, ``after_step`` and ``after_train`` (the last runs in a
``finally``, also when training fails). :func:`build_hooks` fixes their
order; see the comments there. The moving average of the weights and the
profiler are hooks of their own files (:mod:`.ema`, :mod:`.profiler`).
"""

import math
import os
import time

from tqdm import tqdm
from visualdl import LogWriter

from paddleseg.utils import logger
from paddleseg.utils.fileio import atomic_write_json
from . import checkpointer
from .early_stop import EarlyStopHook
from .ema import EMA_FILE, EMAHook
from .hook_base import HookBase, broadcast_buffers
from .profiler import ProfilerHook
from .val import evaluate

__all__ = ['HookBase', 'LRSchedulerHook', 'LoggerHook', 'VisualDLHook',
           'EvalHook', 'EarlyStopHook', 'CheckpointHook', 'build_hooks']


class LRSchedulerHook(HookBase):
    """Steps the LR scheduler once per iteration; owns its state."""

    def __init__(self, scheduler):
        self.scheduler = scheduler

    def after_step(self):
        self.scheduler.step()

    def state_dict(self):
        return {'scheduler': self.scheduler.state_dict()}

    def load_state_dict(self, state):
        self.scheduler.set_state_dict(state['scheduler'])


class LoggerHook(HookBase):
    """A tqdm bar (ETA, loss, lr) and a log line every ``log_iters``."""

    def __init__(self, log_iters=10):
        self.log_iters = max(1, log_iters)
        self._bar = None
        self._window = []

    def before_train(self):
        t = self.trainer
        self._bar = tqdm(total=t.max_iters, initial=t.start_iter, desc='train',
                         unit='it', dynamic_ncols=True, disable=None,
                         leave=False)
        self._start = time.time()

    def after_step(self):
        t = self.trainer
        self._window.append((t.loss, t.batch_cost, t.reader_cost))
        self._bar.update(1)
        self._bar.set_postfix(loss='{:.4f}'.format(t.loss),
                              lr='{:.2e}'.format(t.lr), refresh=False)
        if not self.due(self.log_iters):
            return
        loss, batch_cost, reader_cost = (
            sum(v) / len(self._window) for v in zip(*self._window))
        self._window = []
        remaining = (t.max_iters - t.iter) * batch_cost
        logger.info(
            '[TRAIN] epoch: %d, iter: %d/%d, loss: %.4f, lr: %.6f, '
            'batch_cost: %.4f, reader_cost: %.5f, ips: %.2f samples/sec | '
            'ETA %s', t.epoch, t.iter, t.max_iters, loss, t.lr, batch_cost,
            reader_cost, t.batch_size / max(batch_cost, 1e-9),
            time.strftime('%H:%M:%S', time.gmtime(remaining)))

    def after_train(self):
        if self._bar is not None:
            self._bar.close()
        logger.info('Training took %.1f s.', time.time() - self._start)


class VisualDLHook(HookBase):
    """Scalars for VisualDL: training loss and lr, evaluation metrics (of
    the moving average too, as ``Evaluate/Ema_mIoU`` and so on, when there
    is one)."""

    def __init__(self, log_dir, log_iters=10, ema=None):
        self.writer = LogWriter(log_dir)
        self.log_iters = max(1, log_iters)
        self.ema = ema

    def after_step(self):
        t = self.trainer
        if self.due(self.log_iters):
            self.writer.add_scalar('Train/loss', t.loss, t.iter)
            self.writer.add_scalar('Train/lr', t.lr, t.iter)
        self._metrics('Evaluate/', t.metrics, t.metrics_iter)
        if self.ema is not None:
            self._metrics('Evaluate/Ema_', self.ema.metrics,
                          self.ema.metrics_iter)

    def _metrics(self, prefix, metrics, metrics_iter):
        t = self.trainer
        if metrics_iter == t.iter:
            for key in ('mIoU', 'Acc', 'Kappa', 'Dice'):
                if key in metrics:
                    self.writer.add_scalar(prefix + key, metrics[key], t.iter)

    def after_train(self):
        self.writer.close()


class EvalHook(HookBase):
    """Evaluates on the validation set every ``interval`` iterations.

    Runs on every rank: :func:`paddleseg.core.val.evaluate` shards the set and
    sums the confusion matrices, so all ranks get the same metrics.
    """

    def __init__(self, val_dataset, interval, eval_kwargs=None):
        self.val_dataset = val_dataset
        self.interval = interval
        self.eval_kwargs = eval_kwargs or {}

    def after_step(self):
        if not self.due(self.interval):
            return
        t = self.trainer
        broadcast_buffers(t.raw_model)
        metrics = evaluate(t.model, self.val_dataset, **self.eval_kwargs)
        t.metrics, t.metrics_iter = metrics, t.iter
        logger.info('[EVAL] iter %d: mIoU %.4f, Acc %.4f.', t.iter,
                    metrics['mIoU'], metrics['Acc'])


class CheckpointHook(HookBase):
    """Owns checkpoints: ``iter_N`` every ``interval``, keep-max, and the
    best model with the best mIoU so far (its state); with a moving average
    (``ema``), also the best average in ``ema_best_model/``.

    Only rank 0 writes. ``best_model/`` is replaced whenever a fresh
    evaluation beats the best mIoU so far. Each ``iter_N`` also holds the
    files the other hooks name (:meth:`HookBase.checkpoint_files`).
    """

    def __init__(self, save_dir, interval, keep_max=5, is_writer=True,
                 ema=None):
        self.save_dir = save_dir
        self.interval = interval
        self.keep_max = keep_max
        self.is_writer = is_writer
        self.ema = ema
        # prefix of the state keys -> [best mIoU, its iteration]
        self.best = {'': [-1.0, -1]}
        if ema is not None:
            self.best['ema_'] = [-1.0, -1]

    @property
    def best_miou(self):
        return self.best[''][0]

    @property
    def best_iter(self):
        return self.best[''][1]

    def state_dict(self):
        state = {}
        for prefix, (miou, it) in self.best.items():
            state[prefix + 'best_miou'], state[prefix + 'best_iter'] = miou, it
        return state

    def load_state_dict(self, state):
        for prefix in self.best:
            self.best[prefix] = [state.get(prefix + 'best_miou', -1.0),
                                 state.get(prefix + 'best_iter', -1)]

    def _candidates(self):
        """(state prefix, folder, weights file, model, metrics, their
        iteration) of what can become a best model."""
        t = self.trainer
        yield ('', 'best_model', 'model.pdparams', t.raw_model, t.metrics,
               t.metrics_iter)
        if self.ema is not None:
            yield ('ema_', 'ema_best_model', EMA_FILE, self.ema.model,
                   self.ema.metrics, self.ema.metrics_iter)

    def _keep_best(self):
        """Record (and on rank 0 save) each fresh evaluation that beats the
        best mIoU so far."""
        t = self.trainer
        for prefix, folder, fname, model, metrics, it in self._candidates():
            miou = metrics.get('mIoU', float('nan'))
            if it != t.iter or math.isnan(miou):
                continue
            what = 'EMA model' if prefix else 'model'
            if miou > self.best[prefix][0]:
                self.best[prefix] = [miou, t.iter]
                if self.is_writer:
                    path = checkpointer.save_checkpoint(
                        self.save_dir, folder, model, None, None,
                        model_file=fname)
                    atomic_write_json(os.path.join(path, 'metrics.json'),
                                      dict(_scalars(metrics), iter=t.iter))
                    logger.info('Saved best %s (mIoU %.4f) to %s.', what,
                                miou, path)
            logger.info('[EVAL] best mIoU of the %s so far %.4f at iter %d.',
                        what, *self.best[prefix])

    def after_step(self):
        t = self.trainer
        self._keep_best()
        if not self.due(self.interval) or not self.is_writer:
            return
        path = checkpointer.save_checkpoint(
            self.save_dir, 'iter_{}'.format(t.iter), t.raw_model, t.optimizer,
            t.state_dict(), files=t.checkpoint_files())
        checkpointer.remove_old_checkpoints(self.save_dir, self.keep_max)
        logger.info('Saved checkpoint %s.', path)


def _scalars(metrics):
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}


def build_hooks(scheduler, save_dir, save_interval, keep_checkpoint_max,
                log_iters, val_dataset=None, do_eval=False, use_vdl=False,
                eval_kwargs=None, is_writer=True, ema_model=None,
                early_stop_intervals=None, profiler_options=None):
    """The hooks of a training run, in the order they run after each step
    (``scheduler`` None: a constant learning rate, nothing to step;
    ``ema_model``: keep a moving average of this model's weights)."""
    evaluating = do_eval and val_dataset is not None
    hooks = []
    if scheduler is not None:
        # 1. Step the LR first: the step just taken used the current lr,
        #    which the trainer recorded before stepping.
        hooks.append(LRSchedulerHook(scheduler))
    if is_writer:
        # 2. Report the step (rank 0 only).
        hooks.append(LoggerHook(log_iters))
    if evaluating:
        # 3. Evaluate before checkpointing, so the checkpoint hook can keep
        #    the best model and the state records the best mIoU.
        hooks.append(EvalHook(val_dataset, save_interval, eval_kwargs))
    ema = None
    if ema_model is not None:
        # 4. Update the moving average with this step's weights (and
        #    evaluate it after the model, as PaddleSeg does).
        ema = EMAHook(ema_model, val_dataset=val_dataset if evaluating
                      else None, interval=save_interval,
                      eval_kwargs=eval_kwargs)
        hooks.append(ema)
    if early_stop_intervals is not None and evaluating:
        # 5. Decide on the fresh mIoU whether to stop; before checkpointing,
        #    so the checkpoint records the count.
        hooks.append(EarlyStopHook(early_stop_intervals))
    if use_vdl and is_writer:
        # 6. VisualDL after evaluation, to log the fresh metrics too.
        hooks.append(VisualDLHook(os.path.join(save_dir, 'vdl'), log_iters,
                                  ema))
    # 7. Checkpoint after everything the state records was updated.
    hooks.append(CheckpointHook(save_dir, save_interval, keep_checkpoint_max,
                                is_writer, ema))
    if profiler_options:
        # 8. Last, so that a profiled step includes the work of the hooks.
        hooks.append(ProfilerHook(profiler_options, save_dir, is_writer))
    return hooks
