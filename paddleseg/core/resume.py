"""What a resumed run must share with the run that wrote its checkpoint.

A checkpoint records the run it came from (:func:`run_record`): the model's
parameter names and shapes, the batch size per process, the number of
processes and how often the training set is repeated per epoch
(``--repeats``). Resuming with another model would load weights that do not
fit; with another batch size, process count or repeat count the sample
order, the learning rate per sample and the final weights change, and the
promise that a killed and resumed run ends with the uninterrupted run's
weights no longer holds. :func:`check_resume` refuses either with a sentence
naming every difference; ``train.py --allow_resume_changes`` accepts the
changes that are not the model, and the log then says that the resume is not
exact. :func:`resume_trainer` puts a checkpoint back into a trainer.
"""

from paddleseg.utils import logger
from paddleseg.utils.errors import CheckpointError
from . import checkpointer, run_dir

__all__ = ['run_record', 'check_resume', 'resume_trainer']

# What a run may change only with --allow_resume_changes, and its value in
# checkpoints written before it was recorded.
_RUN_KEYS = {'batch_size': None, 'world_size': None, 'repeats': 1}


def run_record(model, batch_size, world_size, repeats=1):
    """What a checkpoint records of the run that writes it."""
    return {
        'batch_size': int(batch_size),
        'world_size': int(world_size),
        'repeats': int(repeats),
        'model': {name: list(value.shape)
                  for name, value in model.state_dict().items()},
    }


def _model_differences(saved, current, limit=5):
    missing = sorted(set(saved) - set(current))
    extra = sorted(set(current) - set(saved))
    reshaped = sorted(k for k in set(saved) & set(current)
                      if list(saved[k]) != list(current[k]))
    parts = []
    for title, names in (('only in the checkpoint', missing),
                         ('only in this model', extra),
                         ('of another shape', reshaped)):
        if names:
            more = ' (+{} more)'.format(len(names) - limit) \
                if len(names) > limit else ''
            parts.append('{} parameter(s) {}: {}{}'.format(
                len(names), title, ', '.join(names[:limit]), more))
    return '; '.join(parts)


def check_resume(saved, current, ckpt_dir, allow_changes=False):
    """Refuse (or, with ``allow_changes``, report) a resume whose run
    differs from the checkpoint's.

    Args:
        saved (dict | None): The checkpoint's :func:`run_record` (None for
            checkpoints written before runs were recorded: not checked).
        current (dict): This run's :func:`run_record`.
        ckpt_dir (str): The checkpoint, for messages.
        allow_changes (bool): Accept another batch size or process count.

    Raises:
        CheckpointError: naming the differences and what to do.
    """
    if not saved:
        return
    model = _model_differences(saved.get('model', {}), current['model'])
    if model:
        raise CheckpointError(
            'Cannot resume from {}: it was written by another model ({}); '
            'resume with the config it was trained with, or start a new run '
            'in another --save_dir.'.format(ckpt_dir, model))
    changed = []
    for key, before in _RUN_KEYS.items():
        was = saved.get(key, before)
        if was is not None and was != current[key]:
            changed.append('{} {} -> {}'.format(key, was, current[key]))
    if not changed:
        return
    if not allow_changes:
        raise CheckpointError(
            'Cannot resume from {} exactly: the run changed ({}; world_size is '
            'the number of processes, repeats is --repeats). Resume with the '
            'same settings, or pass --allow_resume_changes to go on anyway '
            '(the result then differs from an uninterrupted run).'.format(
                ckpt_dir, ', '.join(changed)))
    logger.warning('Resuming from %s with a changed run (%s): the result will '
                   'not equal an uninterrupted run.', ckpt_dir,
                   ', '.join(changed))


def resume_trainer(trainer, resume_model, save_dir, allow_changes=False,
                   is_writer=True):
    """Load ``resume_model`` (a checkpoint folder, ``'auto'`` for the latest
    in ``save_dir``, or None) into ``trainer``: its state (checked against
    the run first, before any weight moves), the model and optimizer, and
    the hooks' own files. The writer then moves checkpoints newer than the
    resumed one aside (:func:`.run_dir.move_newer_aside`)."""
    if resume_model == 'auto':
        resume_model = checkpointer.latest_checkpoint(save_dir)
        if resume_model is None:
            logger.info('No checkpoint in %s to resume from; starting at '
                        'iteration 0.', save_dir)
    if not resume_model:
        return
    state = checkpointer.read_checkpoint_state(resume_model)
    trainer.load_state_dict(state, resume_model, allow_changes)
    checkpointer.load_checkpoint(resume_model, trainer.raw_model,
                                 trainer.optimizer, state)
    trainer.load_checkpoint_files(resume_model)
    logger.info('Resumed from %s at iteration %d.', resume_model, trainer.iter)
    if is_writer:
        run_dir.move_newer_aside(save_dir, trainer.iter)
