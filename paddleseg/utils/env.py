"""Run set-up: device, seeds, and the record of what a run resolved."""

import os
import platform
import random
import subprocess
import sys

import numpy as np
import paddle

from .errors import SegError
from .fileio import atomic_write_json, atomic_write_text

__all__ = ['set_device', 'set_seed', 'env_info', 'write_run_record',
           'init_distributed']


def set_device(device=None):
    """Select ``cpu``/``gpu`` (default: gpu when Paddle has CUDA)."""
    if device is None:
        device = 'gpu' if paddle.is_compiled_with_cuda() else 'cpu'
    if device == 'gpu' and not paddle.is_compiled_with_cuda():
        raise SegError('--device gpu was requested but this Paddle build has '
                       'no CUDA; install paddlepaddle-gpu or use --device cpu.')
    if device == 'gpu':
        rank_gpu = int(os.environ.get('FLAGS_selected_gpus', '0').split(',')[0])
        paddle.set_device('gpu:{}'.format(rank_gpu))
    else:
        paddle.set_device('cpu')
    return device


def init_distributed():
    """Initialise the process group when launched with several processes."""
    if paddle.distributed.get_world_size() > 1:
        paddle.distributed.init_parallel_env()


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
