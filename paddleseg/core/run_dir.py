"""One training run per ``save_dir``, and a ``save_dir`` tidied before use.

* :func:`own_save_dir` takes an exclusive lock (``save_dir/.lock``,
  ``fcntl.flock``) for the whole run, before anything is written there. A
  second run into the same folder is refused with one sentence naming the
  first (pid, host, start time); the kernel drops the lock of a process that
  died, so a killed run's lock is taken over, with a message saying so.
* :func:`prepare` removes what interrupted runs leave (``*.tmp`` saves,
  ``*.old`` swaps, ``*.deleting`` removals) with one message, and names,
  once, the ``iter_*`` folders that hold no training state (another tool's
  checkpoints, e.g. PaddleSeg's own: they are left alone).
* :func:`move_newer_aside`: resuming from a checkpoint older than others in
  the folder moves the newer ones into ``save_dir/abandoned/`` (they belong
  to a timeline that the resumed run replaces), so keep-max can never delete
  the resumed run's new checkpoints to keep stale ones, and a later
  ``--resume_model auto`` cannot pick a stale one.
"""

import contextlib
import datetime
import fcntl
import glob
import json
import os
import shutil
import socket

from paddleseg.utils import logger
from paddleseg.utils.errors import SegError
from .checkpointer import LEFTOVER_SUFFIXES, list_checkpoints
from .train_state import has_state

__all__ = ['LOCK_FILE', 'SaveDirBusy', 'own_save_dir', 'prepare',
           'move_newer_aside']

LOCK_FILE = '.lock'
ABANDONED = 'abandoned'


class SaveDirBusy(SegError):
    """Another live run holds the save_dir."""


def _owner(lock_path):
    """What the lock file says of its writer ({} if unreadable)."""
    try:
        with open(lock_path, encoding='utf-8') as f:
            return json.loads(f.read() or '{}')
    except (OSError, ValueError):
        return {}


def _describe(owner):
    return 'pid {} on {}, started {}'.format(
        owner.get('pid', '?'), owner.get('host', '?'),
        owner.get('started', '?'))


def _writable_folder(save_dir):
    """Create ``save_dir``; a path that is a file, or a folder that cannot
    be written, is one clear error."""
    if os.path.exists(save_dir) and not os.path.isdir(save_dir):
        raise SegError("--save_dir '{}' is a file, not a folder; give a "
                       'folder for the checkpoints.'.format(save_dir))
    try:
        os.makedirs(save_dir, exist_ok=True)
    except OSError as e:
        raise SegError("Cannot create --save_dir '{}' ({}); give a folder "
                       'you can write to.'.format(save_dir, e.strerror or e))
    if not os.access(save_dir, os.W_OK | os.X_OK):
        raise SegError("--save_dir '{}' is not writable; give a folder you "
                       'can write to.'.format(save_dir))


@contextlib.contextmanager
def own_save_dir(save_dir, enabled=True):
    """Hold ``save_dir`` for this run (rank 0 of a distributed run only:
    pass ``enabled=False`` on the others).

    Raises:
        SaveDirBusy: another live process holds it.
        SegError: it cannot be created or written.
    """
    if not enabled:
        yield
        return
    _writable_folder(save_dir)
    path = os.path.join(save_dir, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SaveDirBusy(
                "--save_dir '{}' is in use by another training run ({}); "
                'wait for it to finish or give another --save_dir.'.format(
                    save_dir, _describe(_owner(path)))) from None
        previous = _owner(path)
        if previous:
            logger.warning('Taking over %s from an earlier run that did not '
                           'finish (%s).', save_dir, _describe(previous))
        me = {'pid': os.getpid(), 'host': socket.gethostname(),
              'started': datetime.datetime.now().isoformat(timespec='seconds')}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        os.fsync(fd)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # a clean end leaves no owner behind
    finally:
        os.close(fd)  # releases the lock


def prepare(save_dir):
    """Remove leftovers of interrupted runs and report foreign ``iter_*``
    folders, once, at the start of a run (rank 0)."""
    leftovers = sorted(
        p for p in glob.glob(os.path.join(save_dir, '*'))
        if os.path.isdir(p) and p.endswith(LEFTOVER_SUFFIXES))
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)
    if leftovers:
        logger.info('Removed %d folder(s) left by an interrupted run in %s: '
                    '%s.', len(leftovers), save_dir,
                    ', '.join(os.path.basename(p) for p in leftovers))
    foreign = sorted(
        p for p in glob.glob(os.path.join(save_dir, 'iter_*'))
        if os.path.isdir(p) and not p.endswith(LEFTOVER_SUFFIXES) and
        not has_state(p))
    if foreign:
        logger.warning('Ignoring %d folder(s) in %s without a training state '
                       '(not checkpoints of this trainer; left as they are): '
                       '%s.', len(foreign), save_dir,
                       ', '.join(os.path.basename(p) for p in foreign))


def move_newer_aside(save_dir, resumed_iter):
    """Move the checkpoints of ``save_dir`` newer than ``resumed_iter`` into
    ``save_dir/abandoned/``; returns their new paths."""
    newer = [p for it, p in list_checkpoints(save_dir) if it > resumed_iter]
    if not newer:
        return []
    target = os.path.join(save_dir, ABANDONED)
    os.makedirs(target, exist_ok=True)
    moved = []
    for path in newer:
        dest = os.path.join(target, os.path.basename(path))
        stamp = 1
        while os.path.exists(dest):
            dest = os.path.join(target, '{}.{}'.format(
                os.path.basename(path), stamp))
            stamp += 1
        os.replace(path, dest)
        moved.append(dest)
    logger.warning('Resuming at iteration %d: moved the newer checkpoint(s) '
                   '%s aside into %s, so this run cannot delete its own new '
                   'checkpoints to keep them.', resumed_iter,
                   ', '.join(os.path.basename(p) for p in newer), target)
    return moved
