"""Training hooks: everything the loop does besides forward, backward and step.

A hook implements any of ``before_train``, ``before_step``, ``after_step`` and
``after_train`` (the last runs in a ``finally``, also when training fails).
:func:`build_hooks` fixes their order; see the comments there.
"""

import math
import os
import time

import paddle.distributed as dist
from tqdm import tqdm
from visualdl import LogWriter

from paddleseg.utils import logger
from paddleseg.utils.fileio import atomic_write_json
from . import checkpointer
from .val import evaluate

__all__ = ['HookBase', 'LRSchedulerHook', 'LoggerHook', 'VisualDLHook',
           'EvalHook', 'CheckpointHook', 'build_hooks']


class HookBase:
    """A no-op hook; ``self.trainer`` is set by the trainer.

    A hook that owns state a resumed run needs returns it from
    :meth:`state_dict` (flat keys, saved in the checkpoint's training state)
    and takes it back in :meth:`load_state_dict`.
    """
    trainer = None

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass

    def before_train(self):
        pass

    def before_step(self):
        pass

    def after_step(self):
        pass

    def after_train(self):
        pass

    def due(self, interval):
        """True at every ``interval``-th iteration and at the last one."""
        it = self.trainer.iter
        return it % interval == 0 or it == self.trainer.max_iters


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
    """Scalars for VisualDL: training loss and lr, evaluation metrics."""

    def __init__(self, log_dir, log_iters=10):
        self.writer = LogWriter(log_dir)
        self.log_iters = max(1, log_iters)

    def after_step(self):
        t = self.trainer
        if self.due(self.log_iters):
            self.writer.add_scalar('Train/loss', t.loss, t.iter)
            self.writer.add_scalar('Train/lr', t.lr, t.iter)
        if t.metrics_iter == t.iter:
            for key in ('mIoU', 'Acc', 'Kappa', 'Dice'):
                if key in t.metrics:
                    self.writer.add_scalar('Evaluate/' + key, t.metrics[key],
                                           t.iter)

    def after_train(self):
        self.writer.close()


def _broadcast_buffers(model):
    """Give every rank rank 0's buffers (BatchNorm running statistics).

    Without SyncBatchNorm (CPU, or one GPU per process without conversion)
    each process tracks its own statistics; rank 0's are the ones saved, so
    all ranks evaluate with those.
    """
    if dist.get_world_size() < 2:
        return
    for buf in model.buffers():
        dist.broadcast(buf, src=0)


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
        _broadcast_buffers(t.raw_model)
        metrics = evaluate(t.model, self.val_dataset, **self.eval_kwargs)
        t.metrics, t.metrics_iter = metrics, t.iter
        logger.info('[EVAL] iter %d: mIoU %.4f, Acc %.4f.', t.iter,
                    metrics['mIoU'], metrics['Acc'])


class CheckpointHook(HookBase):
    """Owns checkpoints: ``iter_N`` every ``interval``, keep-max, and the
    best model with the best mIoU so far (its state).

    Only rank 0 writes. ``best_model/`` is replaced whenever a fresh
    evaluation beats the best mIoU so far.
    """

    def __init__(self, save_dir, interval, keep_max=5, is_writer=True):
        self.save_dir = save_dir
        self.interval = interval
        self.keep_max = keep_max
        self.is_writer = is_writer
        self.best_miou, self.best_iter = -1.0, -1

    def state_dict(self):
        return {'best_miou': self.best_miou, 'best_iter': self.best_iter}

    def load_state_dict(self, state):
        self.best_miou = state.get('best_miou', -1.0)
        self.best_iter = state.get('best_iter', -1)

    def _keep_best(self):
        """Record (and on rank 0 save) a fresh evaluation that beats the
        best mIoU so far."""
        t = self.trainer
        miou = t.metrics.get('mIoU', float('nan'))
        if t.metrics_iter != t.iter or math.isnan(miou):
            return
        if miou > self.best_miou:
            self.best_miou, self.best_iter = miou, t.iter
            if self.is_writer:
                path = checkpointer.save_checkpoint(
                    self.save_dir, 'best_model', t.raw_model, None, None)
                atomic_write_json(os.path.join(path, 'metrics.json'),
                                  dict(_scalars(t.metrics), iter=t.iter))
                logger.info('Saved best model (mIoU %.4f) to %s.',
                            self.best_miou, path)
        logger.info('[EVAL] best mIoU so far %.4f at iter %d.',
                    self.best_miou, self.best_iter)

    def after_step(self):
        t = self.trainer
        self._keep_best()
        if not self.due(self.interval) or not self.is_writer:
            return
        path = checkpointer.save_checkpoint(
            self.save_dir, 'iter_{}'.format(t.iter), t.raw_model, t.optimizer,
            t.state_dict())
        checkpointer.remove_old_checkpoints(self.save_dir, self.keep_max)
        logger.info('Saved checkpoint %s.', path)


def _scalars(metrics):
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}


def build_hooks(scheduler, save_dir, save_interval, keep_checkpoint_max,
                log_iters, val_dataset=None, do_eval=False, use_vdl=False,
                eval_kwargs=None, is_writer=True):
    """The hooks of a training run, in the order they run after each step
    (``scheduler`` None: a constant learning rate, nothing to step)."""
    hooks = []
    if scheduler is not None:
        # 1. Step the LR first: the step just taken used the current lr,
        #    which the trainer recorded before stepping.
        hooks.append(LRSchedulerHook(scheduler))
    if is_writer:
        # 2. Report the step (rank 0 only).
        hooks.append(LoggerHook(log_iters))
    if do_eval and val_dataset is not None:
        # 3. Evaluate before checkpointing, so the checkpoint hook can keep
        #    the best model and the state records the best mIoU.
        hooks.append(EvalHook(val_dataset, save_interval, eval_kwargs))
    if use_vdl and is_writer:
        # 4. VisualDL after evaluation, to log the fresh metrics too.
        hooks.append(VisualDLHook(os.path.join(save_dir, 'vdl'), log_iters))
    # 5. Checkpoint last: it records everything the hooks above updated.
    hooks.append(CheckpointHook(save_dir, save_interval, keep_checkpoint_max,
                                is_writer))
    return hooks
