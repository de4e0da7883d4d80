"""Atomic file writes: a file is either its old self or complete, never half
written, whatever moment the process is killed at.

Everything the project writes that a later step reads (checkpoints, metrics,
the run record, downloads) goes through :func:`atomic_path`: the content is
written under a temporary name in the same folder and moved into place with
``os.replace``, which is atomic on POSIX file systems.
"""

import contextlib
import json
import os

__all__ = ['TMP_SUFFIX', 'atomic_path', 'atomic_write', 'atomic_write_text',
           'atomic_write_json']

TMP_SUFFIX = '.tmp'


def _temporary_name(path):
    """``path.<pid>.tmp``: unique per process, so two writers never share
    a temporary file."""
    return '{}.{}{}'.format(path, os.getpid(), TMP_SUFFIX)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path`` for the caller to write; when
    the block ends without an exception it replaces ``path``, otherwise it
    is removed.

    Example::

        with atomic_path('model.pdparams') as tmp:
            paddle.save(state, tmp)
    """
    tmp = _temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_write(path, mode='w', **kwargs):
    """``open()`` for writing, atomically: yields the file object of a
    temporary file that is flushed to disk and moved to ``path`` when the
    block ends without an exception."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_write(path, 'w', encoding='utf-8') as f:
        f.write(text)


def atomic_write_json(path, obj):
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    with atomic_write(path, 'w', encoding='utf-8') as f:
        json.dump(obj, f, indent=2)
