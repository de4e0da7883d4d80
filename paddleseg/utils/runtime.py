"""Process-level set-up that must happen before Paddle computes anything.

* CPU threads: Paddle 3.3 computes eager-mode CPU kernels on one thread unless
  ``OMP_NUM_THREADS`` is set (two threads are 1.5-1.9x faster on a 2-core
  machine, measured). :func:`default_cpu_threads` sets it to the cores this
  process may use, divided among the processes of a distributed launch on this
  machine, and never overrides a value the user set.
* Warnings that would flood every run (Paddle's "No ccache found" on import).
"""

import os
import warnings


def _usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def local_process_count():
    """Processes a ``paddle.distributed.launch`` started on this machine."""
    for key in ('PADDLE_LOCAL_SIZE', 'PADDLE_TRAINERS_NUM', 'WORLD_SIZE'):
        value = os.environ.get(key)
        if value and value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def default_cpu_threads():
    """Set ``OMP_NUM_THREADS`` unless the user did; return the value in force."""
    if 'OMP_NUM_THREADS' not in os.environ:
        threads = max(1, _usable_cores() // local_process_count())
        os.environ['OMP_NUM_THREADS'] = str(threads)
    return os.environ['OMP_NUM_THREADS']


def quiet_known_warnings():
    """Silence warnings that say nothing about the user's run."""
    warnings.filterwarnings('ignore', message='No ccache found')
