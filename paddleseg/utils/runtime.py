"""Process-level set-up that must happen before Paddle computes anything.

* CPU threads: Paddle 3.3 computes eager-mode CPU kernels on one thread unless
  told otherwise (two threads are 1.5-1.9x faster on a 2-core machine,
  measured). :func:`default_cpu_threads` uses the cores this process may use,
  divided among the processes of a distributed launch on this machine, and
  never overrides an ``OMP_NUM_THREADS`` the user set. It sets the count after
  importing Paddle, whose import otherwise prints a two-line warning whenever
  ``OMP_NUM_THREADS`` is above 1 (and resets an unset variable to 1).
* MKL on AMD CPUs: the CPU wheel of Paddle 3.3 computes matmul and conv
  through Intel MKL 2019, which runs its slow generic code path on CPUs whose
  vendor is not Intel. That MKL honours ``MKL_DEBUG_CPU_TYPE=5`` (use the AVX2
  kernels), read at its first call, so :func:`fast_mkl_on_amd` sets it on AMD
  CPUs unless the user set it (SGEMM 4.6x and an FCN output-stride-8
  training step 2.6x faster on the 2-core AMD EPYC we develop on:
  ``benchmarks/results/mkl_amd.md``). Intel CPUs are left alone: the variable
  would hold them to AVX2.
* Warnings that would flood every run (Paddle's "No ccache found" on import).
"""

import os
import sys
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


def _launch_environment_value(name):
    """``name`` in the environment the process started with (Linux), else
    ``False`` when that cannot be read."""
    try:
        with open('/proc/self/environ', 'rb') as f:
            entries = f.read().split(b'\0')
    except OSError:
        return False
    prefix = name.encode() + b'='
    for entry in entries:
        if entry.startswith(prefix):
            return entry[len(prefix):].decode(errors='replace')
    return None


def cpu_vendor(cpuinfo='/proc/cpuinfo'):
    """The ``vendor_id`` of the first CPU (``'AuthenticAMD'``,
    ``'GenuineIntel'``...), or ``None`` where it cannot be read."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith('vendor_id'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return None


def fast_mkl_on_amd(cpuinfo='/proc/cpuinfo'):
    """Let MKL use its AVX2 kernels on AMD CPUs; return whether it was set.

    Leaves a ``MKL_DEBUG_CPU_TYPE`` the user chose alone. Takes effect only if
    MKL has not computed anything yet in this process (it reads the variable
    once, at its first call), so call it before the first Paddle op.
    """
    if 'MKL_DEBUG_CPU_TYPE' in os.environ or cpu_vendor(cpuinfo) != \
            'AuthenticAMD':
        return False
    os.environ['MKL_DEBUG_CPU_TYPE'] = '5'
    return True


def default_cpu_threads():
    """Use every usable core unless the user chose; return the count in force.

    Paddle's import writes ``OMP_NUM_THREADS=1`` when it is unset, so a value
    found after Paddle was imported is the user's only if the process was
    started with it (read from ``/proc/self/environ`` where available).
    """
    user_value = os.environ.get('OMP_NUM_THREADS')
    if 'paddle' in sys.modules and user_value == '1':
        launched_with = _launch_environment_value('OMP_NUM_THREADS')
        paddle_default = launched_with is None or (launched_with is False)
    else:
        paddle_default = False
    quiet_known_warnings()
    import paddle
    if user_value is not None and not paddle_default:
        return int(user_value) if user_value.isdigit() else user_value
    threads = max(1, _usable_cores() // local_process_count())
    os.environ['OMP_NUM_THREADS'] = str(threads)
    paddle.base.core.set_num_threads(threads)
    return threads


def quiet_known_warnings():
    """Silence warnings that say nothing about the user's run."""
    warnings.filterwarnings('ignore', message='No ccache found')
    # BatchNorm in training mode says this on every call.
    warnings.filterwarnings('ignore', message='When training, we now always '
                            'track global mean and variance')
