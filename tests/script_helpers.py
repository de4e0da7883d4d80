"""Helpers of the end-to-end tests that run the root scripts as a user does
(imported by those tests; not a test module itself)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A 4-iteration FCN-ResNet18 (output stride 32) on the tiny demo data.
TRAIN_CONFIG = """
batch_size: 2
iters: {iters}
train_dataset:
  type: Cityscapes
  dataset_root: {data}
  transforms:
    - type: RandomPaddingCrop
      crop_size: [64, 32]
    - type: RandomHorizontalFlip
    - type: Normalize
  mode: train
val_dataset:
  type: Cityscapes
  dataset_root: {data}
  transforms:
    - type: Normalize
  mode: val
model:
  type: FCN
  backbone:
    type: ResNet18_vd
    output_stride: 32
  backbone_indices: [-1]
optimizer:
  type: SGD
  momentum: 0.9
lr_scheduler:
  type: PolynomialDecay
  learning_rate: 0.01
loss:
  types:
    - type: CrossEntropyLoss
  coef: [1]
"""


def write_train_config(path, iters, data):
    """Write :data:`TRAIN_CONFIG` for ``iters`` iterations on ``data``."""
    with open(path, 'w') as f:
        f.write(TRAIN_CONFIG.format(iters=iters, data=data))
    return str(path)


def make_tiny_data(base, num_train=6, num_val=2, seed=0, name='data'):
    """The demo data at 64x32 under ``base/name``; returns its path."""
    sys.path.insert(0, os.path.join(ROOT, 'tools'))
    from make_demo_data import make_demo_data
    data = os.path.join(str(base), name)
    make_demo_data(data, seed=seed, num_train=num_train, num_val=num_val,
                   width=64, height=32)
    return data


def processes_naming(path):
    """Pids of live processes whose command line names ``path`` (a run and
    its loader workers, a launcher and its processes)."""
    found = []
    for pid in os.listdir('/proc'):
        try:
            with open('/proc/{}/cmdline'.format(pid), 'rb') as f:
                if str(path).encode() in f.read():
                    found.append(int(pid))
        except (OSError, ValueError):
            pass
    return found


def run_script(*args, env=None, check=True, timeout=600):
    """Run ``python *args`` in the repository root; on ``check`` a non-zero
    exit fails with the output's tail."""
    e = dict(os.environ, **(env or {}))
    proc = subprocess.run([sys.executable] + list(args), cwd=ROOT, env=e,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError('{} failed ({}):\n{}\n{}'.format(
            args, proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    return proc
