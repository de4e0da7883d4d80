"""Training checkpoints: PaddleSeg's layout plus an explicit, atomic state.

A checkpoint is a folder ``save_dir/iter_N/`` holding

* ``model.pdparams`` and ``model.pdopt`` (PaddleSeg's files, so PaddleSeg
  tools and ``val.py --model_path`` read them), and
* ``train_state.json``: iteration, LR scheduler, RNG states of Python, NumPy
  and Paddle, best metric so far, what the run was (see
  :mod:`paddleseg.core.train_state`), written as data.

Every file is written to a temporary name and moved into place with
``os.replace``, and the folder itself is assembled under a temporary name and
renamed last, so a run killed mid-write leaves the previous checkpoints intact
and never a half-written one that looks complete. Removal is atomic too: a
folder is renamed out of the ``iter_*`` namespace before it is deleted. A
checkpoint's iteration is read from its state, never parsed from the folder
name. Nothing here unpickles with ``paddle.load``: weights and optimizer
state are read through the restricted unpickler
(:func:`paddleseg.utils.weights.read_state_file`), and a checkpoint whose
weights are not finite is never written.
"""

import glob
import os
import shutil

import paddle

from paddleseg.utils.errors import CheckpointError, TrainingError
from paddleseg.utils.fileio import TMP_SUFFIX as _TMP_SUFFIX
from paddleseg.utils.fileio import atomic_path
from paddleseg.utils.weights import read_state_file
from .train_state import (STATE_FILE, has_state, read_state, rng_state,
                          set_rng_state, write_state)

__all__ = ['atomic_save', 'save_checkpoint', 'load_checkpoint',
           'read_checkpoint_state',
           'latest_checkpoint', 'list_checkpoints', 'remove_old_checkpoints',
           'remove_checkpoint', 'non_finite_parameters', 'read_state',
           'STATE_FILE', 'LEFTOVER_SUFFIXES']

# Folder suffixes of interrupted saves (.tmp), swaps (.old) and removals
# (.deleting); never checkpoints.
_DELETING = '.deleting'
LEFTOVER_SUFFIXES = (_TMP_SUFFIX, '.old', _DELETING)


def atomic_save(obj, path):
    """``paddle.save`` ``obj`` to ``path`` through a temporary file and
    ``os.replace``."""
    with atomic_path(path) as tmp:
        paddle.save(obj, tmp)


def non_finite_parameters(model):
    """Names of the parameters and buffers of ``model`` holding NaN or inf
    (one reduction per tensor; run before each save)."""
    bad = []
    for name, value in model.state_dict().items():
        if paddle.is_floating_point(value) and not bool(
                paddle.isfinite(value).all().item()):
            bad.append(name)
    return bad


def save_checkpoint(save_dir, name, model, optimizer, state, files=None,
                    model_file='model.pdparams'):
    """Write ``save_dir/name/`` atomically and return its path.

    Args:
        save_dir (str): The run's output folder.
        name (str): Folder name, e.g. ``iter_1000`` or ``best_model``.
        model (paddle.nn.Layer): Saved as ``model_file``.
        optimizer (paddle.optimizer.Optimizer | None): ``model.pdopt``.
        state (dict | None): Saved as ``train_state.json`` (with RNG states).
        files (dict | None): ``{file name: layer}``: more state dicts the
            folder holds (the moving average's ``ema_model.pdparams``).
        model_file (str): The file name of ``model``'s weights.

    Raises:
        TrainingError: the model's weights are not finite (the run diverged);
            nothing is written, so the last good checkpoint stays the newest.
    """
    bad = non_finite_parameters(model)
    if bad:
        raise TrainingError(
            'The weights are no longer finite ({} of them, e.g. {}); {} was '
            'not written, and the checkpoints already in {} are kept. Lower '
            'the learning rate (or check the data) and resume from the last '
            'one.'.format(len(bad), ', '.join(bad[:3]), name, save_dir))
    final = os.path.join(save_dir, name)
    staging = final + _TMP_SUFFIX
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    atomic_save(model.state_dict(), os.path.join(staging, model_file))
    for fname, layer in (files or {}).items():
        atomic_save(layer.state_dict(), os.path.join(staging, fname))
    if optimizer is not None:
        atomic_save(optimizer.state_dict(),
                    os.path.join(staging, 'model.pdopt'))
    if state is not None:
        # Optimizer entries are keyed by Paddle's generated parameter names
        # (conv2d_4.w_0_velocity_0), which differ in a process that built
        # other layers first; record them to map entries back on resume.
        names = {k: p.name for k, p in model.named_parameters()}
        write_state(dict(state, rng=rng_state(), param_names=names), staging)
    # Swap the complete folder in: the old one is moved aside first and only
    # deleted once the new one is in place.
    old = final + '.old'
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(final):
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def read_checkpoint_state(ckpt_dir):
    """The training state of the checkpoint folder ``ckpt_dir``.

    Raises:
        CheckpointError: the folder or its state is missing or damaged.
    """
    if not os.path.isdir(ckpt_dir):
        raise CheckpointError(
            'Resume checkpoint {} does not exist; pass a folder written by '
            'training (e.g. output/iter_1000) or `--resume_model auto`.'.format(
                ckpt_dir))
    return read_state(ckpt_dir)


def load_checkpoint(ckpt_dir, model, optimizer, state=None):
    """Restore model, optimizer and RNGs from ``ckpt_dir``; return the state
    (``state``, when the caller read it already with
    :func:`read_checkpoint_state`)."""
    if state is None:
        state = read_checkpoint_state(ckpt_dir)
    for fname, target in (('model.pdparams', model), ('model.pdopt',
                                                      optimizer)):
        path = os.path.join(ckpt_dir, fname)
        if not os.path.isfile(path):
            raise CheckpointError('Checkpoint {} lacks {}; resume from another '
                                  'checkpoint.'.format(ckpt_dir, fname))
        weights = read_state_file(path)
        if target is optimizer and 'param_names' in state:
            weights = _rename_optimizer_state(weights, state['param_names'],
                                              model)
        target.set_state_dict(weights)
    set_rng_state(state['rng'])
    return state


def _rename_optimizer_state(opt_state, saved_names, model):
    """Map optimizer entries from saved to current parameter names."""
    current = {k: p.name for k, p in model.named_parameters()}
    rename = {old: current[k] for k, old in saved_names.items() if k in current}
    # Longest names first, so 'w_1' never claims an entry of 'w_10'.
    olds = sorted(rename, key=len, reverse=True)

    def new_key(key):
        for old in olds:
            if key == old or key.startswith(old + '_'):
                return rename[old] + key[len(old):]
        return key

    out = {}
    for key, value in opt_state.items():
        if isinstance(value, dict) and key == 'master_weights':
            value = {new_key(k): v for k, v in value.items()}
        out[new_key(key)] = value
    return out


def _iteration_of(ckpt_dir):
    try:
        return int(read_state(ckpt_dir)['iter'])
    except (CheckpointError, KeyError, ValueError, TypeError):
        return None


def list_checkpoints(save_dir):
    """Complete ``iter_*`` checkpoints of ``save_dir`` as (iteration, path),
    oldest first. Folders without a training state (another tool's, or
    foreign) are left out; :func:`paddleseg.core.run_dir.prepare` reports
    them once when a run starts."""
    found = []
    for path in glob.glob(os.path.join(save_dir, 'iter_*')):
        if path.endswith(LEFTOVER_SUFFIXES) or not os.path.isdir(path) or \
                not has_state(path):
            continue
        it = _iteration_of(path)
        if it is not None:
            found.append((it, path))
    return sorted(found)


def latest_checkpoint(save_dir):
    """The checkpoint of ``save_dir`` with the highest iteration, or None."""
    found = list_checkpoints(save_dir)
    return found[-1][1] if found else None


def remove_checkpoint(path):
    """Delete a checkpoint folder atomically: it leaves the ``iter_*``
    namespace (renamed to ``*.deleting``) before anything in it is removed,
    so a run killed meanwhile leaves no half-deleted checkpoint."""
    doomed = path + _DELETING
    shutil.rmtree(doomed, ignore_errors=True)
    os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def remove_old_checkpoints(save_dir, keep):
    """Delete all but the ``keep`` newest ``iter_*`` checkpoints."""
    found = list_checkpoints(save_dir)
    for _, path in found[:max(0, len(found) - keep)]:
        remove_checkpoint(path)
