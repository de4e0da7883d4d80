"""The hook interface of the training loop (:class:`HookBase`), apart from
the hooks themselves so that hooks in other files (:mod:`.ema`,
:mod:`.profiler`) and :mod:`.hooks`, which assembles them all, import it
without importing each other."""

import paddle.distributed as dist

__all__ = ['HookBase', 'broadcast_buffers']


class HookBase:
    """A no-op hook; ``self.trainer`` is set by the trainer.

    A hook that owns state a resumed run needs returns it from
    :meth:`state_dict` (flat keys, saved in the checkpoint's training state)
    and takes it back in :meth:`load_state_dict`. State that is weights, not
    data, goes into files of its own beside the checkpoint's
    ``model.pdparams``: :meth:`checkpoint_files` names them and
    :meth:`load_checkpoint_files` reads them back on resume.
    """
    trainer = None

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass

    def checkpoint_files(self):
        """``{file name: layer}``: layers whose state dicts every
        checkpoint folder holds (written atomically with it)."""
        return {}

    def load_checkpoint_files(self, ckpt_dir):
        """Read back what :meth:`checkpoint_files` wrote into ``ckpt_dir``."""

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


def broadcast_buffers(model):
    """Give every rank rank 0's buffers (BatchNorm running statistics).

    Without SyncBatchNorm (CPU, or one GPU per process without conversion)
    each process tracks its own statistics; rank 0's are the ones saved, so
    all ranks evaluate with those.
    """
    if dist.get_world_size() < 2:
        return
    for buf in model.buffers():
        dist.broadcast(buf, src=0)
