"""Training checkpoints: PaddleSeg's layout plus an explicit, atomic state.

A checkpoint is a folder ``save_dir/iter_N/`` holding

* ``model.pdparams`` and ``model.pdopt`` (PaddleSeg's files, so PaddleSeg
  tools and ``val.py --model_path`` read them), and
* ``train_state.pkl``: iteration, LR scheduler, RNG states of Python, NumPy
  and Paddle, data position, best metric so far and the resolved config.

Every file is written to a temporary name and moved into place with
``os.replace``, and the folder itself is assembled under a temporary name and
renamed last, so a run killed mid-write leaves the previous checkpoints intact
and never a half-written one that looks complete. A checkpoint's iteration is
read from its state, never parsed from the folder name.
"""

import glob
import os
import pickle
import random
import shutil

import numpy as np
import paddle

from paddleseg.utils import logger
from paddleseg.utils.errors import CheckpointError
from paddleseg.utils.fileio import TMP_SUFFIX as _TMP_SUFFIX
from paddleseg.utils.fileio import atomic_path, atomic_write

__all__ = ['atomic_save', 'save_checkpoint', 'load_checkpoint',
           'latest_checkpoint', 'remove_old_checkpoints', 'STATE_FILE']

STATE_FILE = 'train_state.pkl'


def atomic_save(obj, path, use_paddle=True):
    """Write ``obj`` to ``path`` (``paddle.save``, else a pickle) through a
    temporary file and ``os.replace``."""
    if use_paddle:
        with atomic_path(path) as tmp:
            paddle.save(obj, tmp)
    else:
        with atomic_write(path, 'wb') as f:
            pickle.dump(obj, f, protocol=4)


def rng_state():
    return {
        'python': random.getstate(),
        'numpy': np.random.get_state(),
        'paddle': paddle.get_rng_state(),
    }


def set_rng_state(state):
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    paddle.set_rng_state(state['paddle'])


def save_checkpoint(save_dir, name, model, optimizer, state):
    """Write ``save_dir/name/`` atomically and return its path.

    Args:
        save_dir (str): The run's output folder.
        name (str): Folder name, e.g. ``iter_1000`` or ``best_model``.
        model (paddle.nn.Layer): Saved as ``model.pdparams``.
        optimizer (paddle.optimizer.Optimizer | None): ``model.pdopt``.
        state (dict | None): Saved as ``train_state.pkl`` (with RNG states).
    """
    final = os.path.join(save_dir, name)
    staging = final + _TMP_SUFFIX
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    atomic_save(model.state_dict(), os.path.join(staging, 'model.pdparams'))
    if optimizer is not None:
        atomic_save(optimizer.state_dict(),
                    os.path.join(staging, 'model.pdopt'))
    if state is not None:
        # Optimizer entries are keyed by Paddle's generated parameter names
        # (conv2d_4.w_0_velocity_0), which differ in a process that built
        # other layers first; record them to map entries back on resume.
        names = {k: p.name for k, p in model.named_parameters()}
        state = dict(state, rng=rng_state(), param_names=names)
        atomic_save(state, os.path.join(staging, STATE_FILE), use_paddle=False)
    # Swap the complete folder in: the old one is moved aside first and only
    # deleted once the new one is in place.
    old = final + '.old'
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(final):
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def read_state(ckpt_dir):
    path = os.path.join(ckpt_dir, STATE_FILE)
    if not os.path.isfile(path):
        raise CheckpointError(
            'Checkpoint folder {} has no {}; it was not written by this '
            'trainer or is incomplete. Pass a folder from save_dir (e.g. '
            'output/iter_1000) or `--resume_model auto`.'.format(
                ckpt_dir, STATE_FILE))
    try:
        with open(path, 'rb') as f:
            return pickle.load(f)
    except Exception as e:
        raise CheckpointError('Cannot read training state {} ({}: {}); the '
                              'file is damaged. Resume from an earlier '
                              'checkpoint.'.format(path, type(e).__name__,
                                                   e)) from e


def load_checkpoint(ckpt_dir, model, optimizer):
    """Restore model, optimizer and RNGs from ``ckpt_dir``; return the state."""
    if not os.path.isdir(ckpt_dir):
        raise CheckpointError(
            'Resume checkpoint {} does not exist; pass a folder written by '
            'training (e.g. output/iter_1000) or `--resume_model auto`.'.format(
                ckpt_dir))
    state = read_state(ckpt_dir)
    for fname, target in (('model.pdparams', model), ('model.pdopt',
                                                      optimizer)):
        path = os.path.join(ckpt_dir, fname)
        if not os.path.isfile(path):
            raise CheckpointError('Checkpoint {} lacks {}; resume from another '
                                  'checkpoint.'.format(ckpt_dir, fname))
        try:
            weights = paddle.load(path)
        except Exception as e:
            raise CheckpointError('Cannot read {} ({}); the file is damaged. '
                                  'Resume from an earlier checkpoint.'.format(
                                      path, e)) from e
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
    except (CheckpointError, KeyError, ValueError):
        return None


def list_checkpoints(save_dir):
    """Complete ``iter_*`` checkpoints of ``save_dir`` as (iteration, path)."""
    found = []
    for path in glob.glob(os.path.join(save_dir, 'iter_*')):
        if path.endswith((_TMP_SUFFIX, '.old')) or not os.path.isdir(path):
            continue
        it = _iteration_of(path)
        if it is None:
            logger.warning('Skipping %s: no readable %s.', path, STATE_FILE)
            continue
        found.append((it, path))
    return sorted(found)


def latest_checkpoint(save_dir):
    """The checkpoint of ``save_dir`` with the highest iteration, or None."""
    found = list_checkpoints(save_dir)
    return found[-1][1] if found else None


def remove_old_checkpoints(save_dir, keep):
    """Delete all but the ``keep`` newest ``iter_*`` checkpoints."""
    found = list_checkpoints(save_dir)
    for _, path in found[:max(0, len(found) - keep)]:
        shutil.rmtree(path, ignore_errors=True)
