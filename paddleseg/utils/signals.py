"""SIGINT and SIGTERM: stop cleanly, whichever arrives.

Schedulers and ``docker stop`` send SIGTERM. Paddle installs a C++ handler
for it at import that prints a stack trace and allocates memory while doing
so; when the signal lands inside ``malloc`` the process deadlocks. Python's
own handler only sets a flag (async-signal safe) and runs the Python-level
function later, between bytecodes, so :func:`install` replaces Paddle's for
SIGTERM and treats it as SIGINT:

* outside a :func:`graceful` block the signal raises :class:`Stopped` (a
  ``KeyboardInterrupt``) at once, as Ctrl-C always has;
* inside one (the training loop), the first signal only records itself: the
  loop finishes the current step, leaves the checkpoints as they are and
  stops (:func:`requested`); a second signal raises at once.

The root scripts exit with ``128 + signal number`` (130 for SIGINT, 143 for
SIGTERM), as a shell reports a process killed by it.
"""

import contextlib
import signal
import sys

__all__ = ['Stopped', 'install', 'graceful', 'requested', 'exit_code']

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_state = {'graceful': False, 'requested': None}


class Stopped(KeyboardInterrupt):
    """A stop signal arrived; ``signum`` says which."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self):
        return signal.Signals(self.signum).name


def _handler(signum, frame):
    if _state['graceful'] and _state['requested'] is None:
        _state['requested'] = signum
        sys.stderr.write('\n{} received: stopping after this step (send it '
                         'again to stop at once).\n'.format(
                             signal.Signals(signum).name))
        sys.stderr.flush()
        return
    raise Stopped(signum)


def install():
    """Handle SIGINT and SIGTERM with :func:`_handler` (main thread only;
    elsewhere Python does not allow it and nothing changes)."""
    try:
        for signum in _SIGNALS:
            signal.signal(signum, _handler)
    except ValueError:  # not the main thread
        pass


@contextlib.contextmanager
def graceful():
    """Within the block a first signal is recorded, not raised."""
    previous = _state['graceful']
    _state['graceful'] = True
    try:
        yield
    finally:
        _state['graceful'] = previous


def requested():
    """The signal number recorded inside :func:`graceful`, or None."""
    return _state['requested']


def clear():
    """Forget a recorded signal (tests; a new run in the same process)."""
    _state['requested'] = None


def exit_code(signum):
    """What a shell reports for a process stopped by ``signum``."""
    return 128 + int(signum)
