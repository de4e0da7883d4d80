"""Build and load the native operator library (``paddleseg/ops/csrc``).

The library is compiled on first use with ``paddle.utils.cpp_extension`` into
a folder keyed by a hash of the sources, the flags, Paddle, Python and the CPU,
so an edit or an upgrade rebuilds and a stale binary is never loaded. Later
processes load the cached ``.so`` directly (no compiler run). Ahead of time::

    python -m paddleseg.ops          # builds and prints the library path

Environment:
    PADDLESEG_EXTENSION_DIR  cache root (default: Paddle's extension folder,
                             $PADDLE_EXTENSION_DIR or
                             ~/.cache/paddle_extensions)
    PADDLESEG_CCA_CFLAGS     C++ optimisation flags (default -O3 -march=native;
                             e.g. -O3 -mavx2 -mfma to ship to other CPUs)
    PADDLESEG_CUDA_ARCH      GPU architectures, e.g. ``80;90`` (default: the
                             visible GPU's); CUDA sources are built only when
                             Paddle is compiled with CUDA

Call :func:`load_native` before ``paddle.jit.load`` of a model that was
exported with the native operator, so Paddle knows the operator.
"""

import contextlib
import hashlib
import os
import platform
import shutil
import sys
import tempfile

import paddle

from paddleseg.utils import logger
from paddleseg.utils.errors import SegError

CSRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'csrc')
NAME = 'paddleseg_cca_ops'
CPU_SOURCES = ['cca_op.cc']
CUDA_SOURCES = ['cca_cuda.cu']

_state = {'module': None, 'error': None, 'tried': False}


class NativeBuildError(SegError, RuntimeError):
    """The native operator library could not be built or loaded."""


def _with_cuda():
    return paddle.is_compiled_with_cuda()


def _cxx_flags():
    flags = os.environ.get('PADDLESEG_CCA_CFLAGS', '-O3 -march=native').split()
    return flags + ['-fopenmp', '-Wno-psabi']


def _cuda_archs():
    """GPU architectures to build: $PADDLESEG_CUDA_ARCH ("80;90"), else the
    visible GPU's, else sm_80 and sm_90."""
    env = os.environ.get('PADDLESEG_CUDA_ARCH')
    if env:
        return [a.strip().replace('.', '') for a in env.split(';') if a.strip()]
    try:
        major, minor = paddle.device.cuda.get_device_capability()
        return ['{}{}'.format(major, minor)]
    except Exception:  # no GPU visible while building
        return ['80', '90']


def _cuda_flags():
    archs = _cuda_archs()
    flags = ['-O3', '--expt-relaxed-constexpr']
    flags += ['-gencode=arch=compute_{0},code=sm_{0}'.format(a) for a in archs]
    # PTX of the newest one, so later GPUs can still run the kernels.
    return flags + ['-gencode=arch=compute_{0},code=compute_{0}'.format(
        archs[-1])]


def _cpu_fingerprint():
    """The CPU model and flags (the default flags tune for this CPU)."""
    try:
        with open('/proc/cpuinfo') as f:
            lines = [l for l in f if l.startswith(('model name', 'flags'))]
        return ''.join(sorted(set(lines)))
    except OSError:
        return platform.processor()


def source_digest(folder, parts):
    """Hex digest of the sources in ``folder`` and the build's ``parts``."""
    h = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), 'rb') as f:
            h.update(name.encode() + b'\0' + f.read())
    for part in parts:
        h.update(repr(part).encode())
    return h.hexdigest()[:16]


def build_key():
    """Hex digest naming the build folder of the current sources and setup."""
    return source_digest(CSRC, (_cxx_flags(),
                                _cuda_flags() if _with_cuda() else [],
                                paddle.__version__, sys.version,
                                _cpu_fingerprint()))


def extension_root():
    """Where the native libraries are cached."""
    # cpp_extension is imported only when needed: it pulls in setuptools.
    from paddle.utils.cpp_extension import get_build_directory
    return os.environ.get('PADDLESEG_EXTENSION_DIR') or get_build_directory()


def build_directory():
    """Folder of the library for the current sources (may not exist yet)."""
    return os.path.join(extension_root(), 'paddleseg_cca_' + build_key())


def library_path():
    return os.path.join(build_directory(), NAME, NAME + '.so')


def compiler():
    """Path of the C++ compiler Paddle will use, or None."""
    return shutil.which(os.environ.get('CXX', 'c++')) or shutil.which('g++')


@contextlib.contextmanager
def _captured_output():
    """Send fd 1 and 2 (also of child processes) to a file; yield a reader."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode='w+b') as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield lambda: (log.seek(0), log.read().decode(errors='replace'))[1]
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _compile(directory):
    """Compile the criss-cross attention library into ``directory``."""
    sources = [os.path.join(CSRC, s) for s in CPU_SOURCES]
    if _with_cuda():
        sources += [os.path.join(CSRC, s) for s in CUDA_SOURCES]
    compile_library(NAME, sources, directory, 'the criss-cross attention '
                    'operator', extra_cxx_cflags=_cxx_flags(),
                    extra_cuda_cflags=_cuda_flags(),
                    extra_ldflags=['-fopenmp'])


def compile_library(name, sources, directory, what, **options):
    """``cpp_extension.load`` of ``sources`` into ``directory`` with its
    output captured; raise NativeBuildError with the log on failure."""
    from paddle.utils.cpp_extension import load
    os.makedirs(directory, exist_ok=True)  # load() needs it to exist
    with _captured_output() as read_log:
        try:
            load(name=name, sources=sources, build_directory=directory,
                 **options)
            error = None
        except Exception as e:  # Paddle raises several types here
            error = e
        log = read_log()
    if error is not None:
        raise NativeBuildError(
            'Building {} in {} failed ({}); the compiler said:\n{}'.format(
                what, directory, error, log[-6000:]))


def _lock(directory):
    """An exclusive file lock, so parallel processes build only once."""
    import fcntl
    os.makedirs(directory, exist_ok=True)
    f = open(os.path.join(directory, '.lock'), 'w')
    fcntl.flock(f, fcntl.LOCK_EX)
    return f


def build(verbose=False):
    """Compile the library if needed and return the path of the ``.so``."""
    return build_once(library_path(), _compile, 'the criss-cross attention '
                      'operator', 'set PADDLESEG_CCA_BACKEND=reference to use '
                      'the pure-Paddle path', verbose)


def build_once(path, compile_into, what, alternative, verbose=False):
    """``compile_into(folder)`` unless ``path`` exists, under a file lock so
    that parallel processes build only once; return ``path``."""
    if os.path.exists(path):
        return path
    if compiler() is None:
        raise NativeBuildError(
            'No C++ compiler found (tried $CXX, c++ and g++); install g++ or '
            '{}.'.format(alternative))
    directory = os.path.dirname(os.path.dirname(path))
    with _lock(directory):
        if not os.path.exists(path):
            if verbose:
                logger.info('Compiling %s into %s (once)', what, directory)
            compile_into(directory)
    return path


def load_native(verbose=False):
    """Build if needed and register the native operators with Paddle.

    Returns:
        str | None: the library path, or None when it cannot be built here
        (the reason was logged once as a warning; :func:`native_error`
        returns it).
    """
    if _state['tried']:
        return _state['module']
    _state['tried'] = True
    try:
        path = build(verbose=verbose)
        register_library(path)
        _state['module'] = path
    except NativeBuildError as e:
        _state['error'] = e
        logger.warning('%s Falling back to the pure-Paddle criss-cross '
                       'attention.', e)
    return _state['module']


def register_library(path, what='the criss-cross attention operator'):
    """Register the operators of the library at ``path`` with Paddle."""
    from paddle.utils.cpp_extension import load_op_meta_info_and_register_op
    try:
        load_op_meta_info_and_register_op(path)
    except Exception as e:  # a truncated or foreign binary
        raise NativeBuildError(
            'Loading {} {} failed ({}); delete its folder to rebuild '
            'it.'.format(what, path, e)) from e


def native_error():
    """Why the native library is unavailable (None if it loaded)."""
    return _state['error']


def main():
    path = build(verbose=True)
    print(path)


if __name__ == '__main__':
    main()
