"""Shared fixtures: temp folders for op builds, tiny configs, paths."""

import os
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), 'shared')

# Custom-op builds go to a temp folder, never to the user's home.
os.environ.setdefault('PADDLE_EXTENSION_DIR',
                      tempfile.mkdtemp(prefix='paddleseg_ext_'))


TINY_MODEL_CONFIG = """
val_dataset:
  type: Cityscapes
  dataset_root: {data}
  transforms: {transforms}
  mode: val
model:
  type: {model}
  backbone:
    type: ResNet18_vd
    output_stride: 8
"""


@pytest.fixture(scope='session')
def write_model_config():
    """``write(path, data_root, transforms='[{type: Normalize}]',
    model='CCNet')``: write a validation-only config of a small model
    (ResNet18_vd at output stride 8; CCNet with R = 2) to ``path`` and
    return it as a string."""

    def _write(path, data_root, transforms='[{type: Normalize}]',
               model='CCNet'):
        text = TINY_MODEL_CONFIG.format(data=data_root, transforms=transforms,
                                        model=model)
        if model == 'CCNet':
            text += '  recurrence: 2\n'
        with open(path, 'w') as f:
            f.write(text)
        return str(path)

    return _write


def _as_if_trained(model):
    """Batch-norm statistics away from 0/1 and every learnt scale that
    starts at zero (criss-cross attention's gamma) switched on, so each
    part of the graph changes the output a check compares."""
    import numpy as np
    import paddle
    rng = np.random.RandomState(0)
    for layer in model.sublayers():
        if isinstance(layer, paddle.nn.BatchNorm2D):
            n = layer._mean.shape[0]
            layer._mean.set_value(rng.uniform(-0.1, 0.1, n).astype('float32'))
            layer._variance.set_value(rng.uniform(0.5, 1.5, n)
                                      .astype('float32'))
    for name, p in model.named_parameters():
        if name.endswith('gamma') and not p.numpy().any():
            p.set_value(paddle.full(p.shape, 0.5, p.dtype))
    return model


@pytest.fixture(scope='session')
def as_if_trained():
    """``as_if_trained(model)``: weights as after some training (see
    :func:`_as_if_trained`); returns the model."""
    return _as_if_trained


@pytest.fixture
def write_yaml(tmp_path):
    """Write a YAML text to tmp_path/<name> and return its path."""

    def _write(name, text):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return str(path)

    return _write


@pytest.fixture
def paddleseg_keys():
    """Read a PaddleSeg state-dict key list, ``../shared/compat/keys/<name>``,
    as ``{key: shape}``; skip the test where that folder is absent."""

    def _read(name):
        path = os.path.join(SHARED, 'compat', 'keys', name)
        if not os.path.isfile(path):
            pytest.skip('PaddleSeg key lists (../shared/compat) are not '
                        'present')
        keys = {}
        with open(path) as f:
            for line in f:
                if line.startswith('#') or not line.strip():
                    continue
                key, shape, _ = line.rstrip('\n').split('\t')
                keys[key] = [int(s) for s in shape.strip('[]').split(',')
                             if s]
        return keys

    return _read


@pytest.fixture(scope='session')
def native_op():
    """Build (once per session, in the temp PADDLE_EXTENSION_DIR) and load
    the native library; skip when this machine has no C++ compiler."""
    from paddleseg.ops import native
    if native.compiler() is None:
        pytest.skip('no C++ compiler: the native operator cannot be built')
    native.build()
    path = native.load_native()
    assert path is not None, native.native_error()
    return path


def _oom_kills():
    """The kernel's OOM-kill count of this cgroup (v2, else v1), or None."""
    for path in ('/sys/fs/cgroup/memory.events',
                 '/sys/fs/cgroup/memory/memory.oom_control'):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith('oom_kill '):
                        return int(line.split()[1])
        except (OSError, ValueError):
            pass
    return None


def _available_mb():
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    return None


def pytest_testnodedown(node, error):
    """pytest-xdist, in the controller: a worker that died says only "Not
    properly terminated". Say how it ended (a signal: SIGSEGV prints its
    own traceback, a silent SIGKILL is most often the kernel's OOM killer,
    which the cgroup's count tells) and the memory left, so that a crash on
    CI can be told apart from the next one."""
    if not error:
        return
    import signal
    popen = getattr(getattr(getattr(node, 'gateway', None), '_io', None),
                    'popen', None)
    try:
        code = popen.wait(timeout=10) if popen is not None else None
    except Exception:  # noqa: BLE001 - a diagnostic must not fail the run
        code = None
    how = 'an unknown status'
    if code is not None and code < 0:
        try:
            how = 'signal {}'.format(signal.Signals(-code).name)
        except ValueError:
            how = 'signal {}'.format(-code)
    elif code is not None:
        how = 'exit status {}'.format(code)
    print('\n[{}] the worker ended with {}; memory available now {} MB, '
          'OOM kills in this cgroup so far: {}'.format(
              getattr(node, 'gateway', None) and node.gateway.id, how,
              _available_mb(), _oom_kills()), flush=True)
