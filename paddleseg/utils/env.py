"""Run set-up: device, seeds, and the record of what a run resolved."""

import os
import platform
import random
import select
import signal
import subprocess
import sys

import numpy as np
import paddle

from .errors import SegError
from .fileio import atomic_write_json, atomic_write_text

__all__ = ['set_device', 'set_seed', 'env_info', 'write_run_record',
           'init_distributed']


def set_device(device=None, device_id=None):
    """Select ``cpu``/``gpu`` (default: gpu when Paddle has CUDA).

    On a GPU, ``device_id`` (``predict.py --device_id``) picks the card;
    otherwise the one a distributed launch assigned (card 0 alone). On the
    CPU it is ignored, as in PaddleSeg.
    """
    if device is None:
        device = 'gpu' if paddle.is_compiled_with_cuda() else 'cpu'
    if device == 'gpu' and not paddle.is_compiled_with_cuda():
        raise SegError('--device gpu was requested but this Paddle build has '
                       'no CUDA; install paddlepaddle-gpu or use --device cpu.')
    if device == 'gpu':
        rank_gpu = int(os.environ.get('FLAGS_selected_gpus', '0').split(',')[0])
        paddle.set_device('gpu:{}'.format(
            rank_gpu if device_id is None else int(device_id)))
    else:
        paddle.set_device('cpu')
    return device


JOIN_TIMEOUT_ENV = 'PADDLESEG_DIST_JOIN_TIMEOUT'
_DEFAULT_JOIN_TIMEOUT_S = 300


def _join_timeout():
    value = os.environ.get(JOIN_TIMEOUT_ENV, str(_DEFAULT_JOIN_TIMEOUT_S))
    try:
        seconds = float(value)
    except ValueError:
        raise SegError('${} must be a number of seconds, got {!r}.'.format(
            JOIN_TIMEOUT_ENV, value)) from None
    return seconds


def _join_message(seconds, rank, world_size):
    return (
        'Error (rank {} of {}): the other processes did not all join the run '
        'within {:.0f} s (${}); one failed before joining - its log (the '
        "launcher's --log_dir, workerlog.N) says why - or a node was never "
        'started. Stopping this one.\n'.format(rank, world_size, seconds,
                                               JOIN_TIMEOUT_ENV))


def _start_join_watchdog(seconds, message):
    """Fork a watchdog that, unless told within ``seconds`` that the join
    succeeded, writes ``message`` to stderr and kills this process. A thread
    cannot do it: Paddle retries the connection in C++ holding the GIL.
    Returns the watchdog's pid and the pipe end to close on success."""
    read_end, write_end = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the watchdog: plain system calls only
        os.close(write_end)
        ready, _, _ = select.select([read_end], [], [], seconds)
        if not ready:
            os.write(2, message.encode())
            os.kill(parent, signal.SIGKILL)
        os._exit(0)
    os.close(read_end)
    return pid, write_end


def init_distributed():
    """Join the process group when launched with several processes.

    Called first, before the config and the data are read: a rank that then
    fails ends its peers within seconds (their next collective sees it
    gone). A rank that never joins (it failed even earlier, or its node was
    not started) would leave the others retrying forever, as in
    PaddleSeg#3499; a watchdog ends them after ``$PADDLESEG_DIST_JOIN_TIMEOUT``
    seconds (300) with a message.
    """
    world_size = paddle.distributed.get_world_size()
    if world_size <= 1:
        return
    seconds = _join_timeout()
    watchdog, done = _start_join_watchdog(seconds, _join_message(
        seconds, paddle.distributed.get_rank(), world_size))
    try:
        paddle.distributed.init_parallel_env()
    finally:
        os.close(done)  # the watchdog sees end-of-file and leaves at once
        os.waitpid(watchdog, 0)


def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)


def _git_commit():
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    try:
        out = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=root,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def env_info():
    """Versions, device and threads: what a number depends on."""
    return {
        'python': sys.version.split()[0],
        'platform': platform.platform(),
        'paddle': paddle.__version__,
        'paddle_cuda': paddle.version.cuda(),
        'numpy': np.__version__,
        'device': paddle.get_device(),
        'world_size': paddle.distributed.get_world_size(),
        'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS'),
        'git_commit': _git_commit(),
        'argv': sys.argv,
    }


def write_run_record(save_dir, config):
    """Write the merged config and the environment into ``save_dir``."""
    os.makedirs(save_dir, exist_ok=True)
    atomic_write_text(os.path.join(save_dir, 'config.yml'), config.to_yaml())
    atomic_write_json(os.path.join(save_dir, 'env.json'), env_info())
