"""Reading Paddle's pickle files without running code from them.

``paddle.load`` and ``pickle.load`` unpickle: a ``.pdparams`` file can name
any importable callable and have it called (``os.system`` included) before
a single check runs, and checkpoints are what users download from strangers.
A state dict written by ``paddle.save`` needs very little: NumPy arrays,
their dtypes, NumPy scalars, plain containers (and, for Paddle 2's saved
tensors, a ``(name, array)`` tuple). :func:`load` unpickles with exactly that
allowed (:data:`ALLOWED`); a file that asks for anything else is refused with
one sentence naming the file and what it asked for, before anything it holds
is constructed. This is PyTorch's ``weights_only=True`` for Paddle's files.

Cost: the same pickle machinery as ``paddle.load``, plus one dictionary look
up per global the file names (a handful per file); the README quotes the
measured time against ``paddle.load``.
"""

import io
import pickle

import numpy as np

from .errors import CheckpointError

__all__ = ['ALLOWED', 'UnsafePickleError', 'load', 'loads', 'to_arrays']


def _allowed():
    """(module, name) -> the object the unpickler hands out for it: the
    object imported here, never what the file says."""
    import codecs
    import collections
    try:
        from numpy._core import multiarray  # NumPy 2
    except ImportError:  # NumPy 1
        from numpy.core import multiarray
    from paddle.base.libpaddle import GeneratorState
    allowed = {
        ('numpy', 'ndarray'): np.ndarray,
        ('numpy', 'dtype'): np.dtype,
        ('collections', 'OrderedDict'): collections.OrderedDict,
        ('_codecs', 'encode'): codecs.encode,  # bytes in protocol-2 pickles
        # Paddle's random generator state, as paddle.get_rng_state() gives
        # it (earlier train_state.pkl files hold it).
        ('paddle.base.libpaddle', 'GeneratorState'): GeneratorState,
    }
    for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        allowed[(module, '_reconstruct')] = multiarray._reconstruct
        allowed[(module, 'scalar')] = multiarray.scalar
    for kind in (tuple, list, dict, set, frozenset, bytearray, complex,
                 slice):
        allowed[('builtins', kind.__name__)] = kind
    return allowed


ALLOWED = _allowed()


class UnsafePickleError(CheckpointError):
    """A pickle asked for something a weights file never needs."""


class _Unpickler(pickle.Unpickler):

    def __init__(self, f, source):
        super().__init__(f)
        self.source = source

    def find_class(self, module, name):
        if (module, name) not in ALLOWED:
            raise UnsafePickleError(
                "Refusing to load '{}': it asks to run {}.{}, which no "
                'weights or checkpoint file needs (a pickle can run any code '
                'it names); get the file from a source you trust, or '
                'convert a trusted copy to .safetensors with '
                'tools/convert_weights.py.'.format(self.source, module,
                                                   name))
        return ALLOWED[(module, name)]

    def persistent_load(self, pid):
        raise UnsafePickleError(
            "Refusing to load '{}': it uses pickle persistent ids, which "
            'Paddle never writes.'.format(self.source))


def _unpickle(f, source):
    try:
        return _Unpickler(f, source).load()
    except UnsafePickleError:
        raise
    except Exception as e:
        raise CheckpointError("Cannot read '{}' ({}: {}); the file is "
                              'damaged or not a Paddle file.'.format(
                                  source, type(e).__name__, e)) from e


def loads(data, source='<bytes>'):
    """Unpickle ``data`` with only :data:`ALLOWED` globals."""
    return _unpickle(io.BytesIO(data), source)


def load(path):
    """Unpickle the file at ``path`` with only :data:`ALLOWED` globals.

    Raises:
        UnsafePickleError: the file names anything else (nothing of it has
            been constructed).
        CheckpointError: the file cannot be read or is not a pickle.
    """
    try:
        f = open(path, 'rb')
    except OSError as e:
        raise CheckpointError("Cannot read '{}': {}.".format(
            path, e.strerror or e)) from e
    with f:  # read as it is parsed: no copy of the whole file
        return _unpickle(f, path)


def to_arrays(obj):
    """Paddle 2's saved tensors, ``(name, ndarray)`` tuples, as arrays; the
    rest of a loaded state unchanged (recursively through dicts)."""
    if isinstance(obj, dict):
        return type(obj)((k, to_arrays(v)) for k, v in obj.items())
    if (isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], str)
            and isinstance(obj[1], np.ndarray)):
        return obj[1]
    return obj
