"""The training state of a checkpoint, written as data: JSON, not a pickle.

``train_state.json`` holds the iteration, the LR scheduler's and the loss
scaler's state, the best metric so far, the RNG states of Python, NumPy and
Paddle, the parameter names the optimizer state is keyed by, and what the
run was (batch size, processes, model) so a resume can refuse a changed one.
Reading it can run no code, whoever wrote the file. Checkpoints written
before this format hold ``train_state.pkl``; it is read through the
restricted unpickler of :mod:`paddleseg.utils.safe_pickle`.

NumPy arrays and scalars that a state holds (a loss scaler's scale) are
encoded as ``{"__ndarray__": [...], "dtype": "float32"}`` and plain numbers.
"""

import json
import os
import random

import numpy as np
import paddle
from paddle.base.libpaddle import GeneratorState

from paddleseg.utils import safe_pickle
from paddleseg.utils.errors import CheckpointError
from paddleseg.utils.fileio import atomic_write_text

__all__ = ['STATE_FILE', 'LEGACY_STATE_FILE', 'rng_state', 'set_rng_state',
           'write_state', 'read_state', 'has_state']

STATE_FILE = 'train_state.json'
LEGACY_STATE_FILE = 'train_state.pkl'  # before the JSON format


def rng_state():
    """The RNG states of Python, NumPy and Paddle, as JSON-able lists."""
    np_state = np.random.get_state()
    return {
        'python': list(random.getstate()),
        'numpy': [np_state[0], np_state[1].tolist()] + [
            v.item() if isinstance(v, np.generic) else v
            for v in np_state[2:]],
        'paddle': [list(s.__getstate__()) for s in paddle.get_rng_state()],
    }


def _paddle_generator(state):
    if isinstance(state, GeneratorState):  # from a legacy pickle
        return state
    # pybind11 gives GeneratorState no constructor; make it as pickle does.
    generator = GeneratorState.__new__(GeneratorState)
    generator.__setstate__(tuple(state))
    return generator


def set_rng_state(state):
    """Restore what :func:`rng_state` (or a legacy pickle) recorded."""
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), int(pos),
                         int(has_gauss), float(cached)))
    paddle.set_rng_state([_paddle_generator(s) for s in state['paddle']])


def _encode(obj):
    if isinstance(obj, np.ndarray):
        return {'__ndarray__': obj.tolist(), 'dtype': str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, paddle.Tensor):
        return _encode(obj.numpy())
    raise TypeError('{} is not part of a training state that can be written '
                    'as data'.format(type(obj).__name__))


def _decode(dic):
    if '__ndarray__' in dic:
        return np.asarray(dic['__ndarray__'], dtype=dic['dtype'])
    return dic


def write_state(state, ckpt_dir):
    """Write ``state`` as ``ckpt_dir/train_state.json``, atomically."""
    atomic_write_text(os.path.join(ckpt_dir, STATE_FILE),
                      json.dumps(state, default=_encode, indent=1))


def has_state(ckpt_dir):
    """Whether ``ckpt_dir`` holds a training state (either format)."""
    return any(os.path.isfile(os.path.join(ckpt_dir, name))
               for name in (STATE_FILE, LEGACY_STATE_FILE))


def read_state(ckpt_dir):
    """The training state of ``ckpt_dir``, read without running code.

    Raises:
        CheckpointError: there is none, or it is damaged or unsafe.
    """
    path = os.path.join(ckpt_dir, STATE_FILE)
    if os.path.isfile(path):
        try:
            with open(path, encoding='utf-8') as f:
                state = json.load(f, object_hook=_decode)
        except (OSError, ValueError) as e:
            raise CheckpointError(
                'Cannot read training state {} ({}: {}); the file is damaged. '
                'Resume from an earlier checkpoint.'.format(
                    path, type(e).__name__, e)) from e
    elif os.path.isfile(os.path.join(ckpt_dir, LEGACY_STATE_FILE)):
        state = safe_pickle.load(os.path.join(ckpt_dir, LEGACY_STATE_FILE))
    else:
        raise CheckpointError(
            'Checkpoint folder {} has no {} (nor {}, the earlier format); it '
            'was not written by this trainer or is incomplete. Pass a folder '
            'from save_dir (e.g. output/iter_1000) or `--resume_model '
            'auto`.'.format(ckpt_dir, STATE_FILE, LEGACY_STATE_FILE))
    if not isinstance(state, dict) or 'iter' not in state:
        raise CheckpointError('The training state in {} holds no iteration; '
                              'the file is damaged. Resume from an earlier '
                              'checkpoint.'.format(ckpt_dir))
    return state
