"""The restricted unpickler: Paddle's files load, anything that asks to run
code is refused before it runs, and the message names the file."""

import os
import pickle
import random

import numpy as np
import paddle
import pytest

from paddleseg.utils import safe_pickle
from paddleseg.utils.errors import CheckpointError


class WritesMarker:
    """Unpickling this runs os.system: what a hostile checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ('touch {}'.format(self.marker), ))


def hostile_file(path, marker, wrap=dict):
    with open(path, 'wb') as f:
        pickle.dump(wrap({'conv.weight': WritesMarker(marker)}), f)
    return str(path)


def test_paddle_state_dict_loads_as_arrays(tmp_path):
    layer = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3),
                                 paddle.nn.BatchNorm2D(4))
    paddle.save(layer.state_dict(), str(tmp_path / 'm.pdparams'))
    loaded = safe_pickle.load(str(tmp_path / 'm.pdparams'))
    expected = paddle.load(str(tmp_path / 'm.pdparams'))
    for key, value in expected.items():
        np.testing.assert_array_equal(loaded[key], value.numpy())


def test_optimizer_state_and_old_protocols_load(tmp_path):
    layer = paddle.nn.Linear(2, 2)
    opt = paddle.optimizer.Momentum(
        paddle.optimizer.lr.PolynomialDecay(0.1, 10), momentum=0.9,
        parameters=layer.parameters())
    layer(paddle.ones([1, 2])).sum().backward()
    opt.step()
    paddle.save(opt.state_dict(), str(tmp_path / 'm.pdopt'))
    state = safe_pickle.load(str(tmp_path / 'm.pdopt'))
    assert state['LR_Scheduler']['last_epoch'] == 0
    # Protocol 2 (bytes through _codecs.encode), NumPy scalars, and Paddle
    # 2's saved tensors, (name, array) tuples.
    data = {'w': np.arange(3, dtype='float32'), 'b': b'xy',
            's': np.float32(2.5), 't': ('linear_0.w_0', np.ones(2))}
    blob = pickle.dumps(data, protocol=2)
    out = safe_pickle.to_arrays(safe_pickle.loads(blob))
    np.testing.assert_array_equal(out['w'], data['w'])
    assert out['b'] == b'xy' and out['s'] == 2.5
    np.testing.assert_array_equal(out['t'], np.ones(2))


def test_legacy_training_state_with_rng_states_loads(tmp_path):
    state = {'iter': 3, 'rng': {'python': random.getstate(),
                                'numpy': np.random.get_state(),
                                'paddle': paddle.get_rng_state()}}
    (tmp_path / 'train_state.pkl').write_bytes(pickle.dumps(state, 4))
    loaded = safe_pickle.load(str(tmp_path / 'train_state.pkl'))
    expected = paddle.rand([4]).numpy()
    paddle.set_rng_state(loaded['rng']['paddle'])
    np.testing.assert_array_equal(paddle.rand([4]).numpy(), expected)


@pytest.mark.parametrize('wrap', [dict, lambda d: [d], lambda d: {'a': d}])
def test_code_in_a_file_is_refused_before_it_runs(tmp_path, wrap):
    marker = tmp_path / 'ran'
    path = hostile_file(tmp_path / 'evil.pdparams', marker, wrap)
    with pytest.raises(safe_pickle.UnsafePickleError) as e:
        safe_pickle.load(path)
    assert not marker.exists()
    message = str(e.value)
    assert path in message and 'posix.system' in message
    assert message.startswith("Refusing to load '")


def test_persistent_ids_and_damaged_files_are_refused(tmp_path):

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return 'x' if isinstance(obj, str) else None

    import io
    buf = io.BytesIO()
    P(buf).dump({'a': 'b'})
    with pytest.raises(safe_pickle.UnsafePickleError, match='persistent'):
        safe_pickle.loads(buf.getvalue(), 'p.pdparams')
    (tmp_path / 'cut.pdparams').write_bytes(pickle.dumps({'a': 1})[:5])
    with pytest.raises(CheckpointError, match='cut.pdparams.*damaged'):
        safe_pickle.load(str(tmp_path / 'cut.pdparams'))
