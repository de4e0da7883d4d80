"""What a user trusts a training framework with, tried as a hostile or
unlucky user would: files that would run code, samples that would hang the
loader, signals, two runs in one folder, a diverging run, checkpoints of
another model or run, and inputs that used to end in a traceback.

Every case ends in one clear sentence and a non-zero exit, with the files
in ``save_dir`` intact."""

import glob
import json
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from script_helpers import (make_tiny_data, processes_naming,  # noqa: E402
                            run_script, write_train_config)


class WritesMarker:
    """Unpickling this runs a shell command: what a hostile file does."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, ('touch ' + self.marker, ))


def _hostile(path, marker):
    with open(path, 'wb') as f:
        pickle.dump({'conv.weight': WritesMarker(marker), 'iter': 9}, f)
    return str(path)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """(base folder, demo data, 4-iteration config, trained iter_4)."""
    base = tmp_path_factory.mktemp('trust')
    data = make_tiny_data(base)
    cfg = write_train_config(base / 'tiny.yml', iters=4, data=data)
    run_script('train.py', '--config', cfg, '--save_interval', '2',
               '--save_dir', str(base / 'run'))
    return base, data, cfg


def _one_error(proc, *words):
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    errors = [l for l in proc.stderr.splitlines() if l.startswith('Error: ')]
    assert len(errors) == 1, proc.stderr[-3000:]
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


# -- loading a file never runs code from it ---------------------------------

@pytest.mark.parametrize('entry', ['val', 'predict', 'export', 'convert',
                                   'pretrained', 'resume', 'listing'])
def test_no_entry_point_runs_code_from_a_file(tiny, tmp_path, entry):
    base, data, cfg = tiny
    marker = tmp_path / 'ran'
    evil = _hostile(tmp_path / 'model.pdparams', marker)
    image = glob.glob(os.path.join(data, 'leftImg8bit', 'val', '*', '*'))[0]
    save = str(tmp_path / 'out')
    if entry in ('resume', 'listing'):  # a checkpoint folder with it inside
        ckpt = tmp_path / 'out' / 'iter_9'
        ckpt.mkdir(parents=True)
        _hostile(ckpt / 'train_state.pkl', marker)
        for name in ('model.pdparams', 'model.pdopt'):
            (ckpt / name).write_bytes(open(evil, 'rb').read())
    args = {
        'val': ['val.py', '--config', cfg, '--model_path', evil],
        'predict': ['predict.py', '--config', cfg, '--model_path', evil,
                    '--image_path', image, '--save_dir', save],
        'export': ['export.py', '--config', cfg, '--model_path', evil,
                   '--save_dir', save],
        'convert': ['tools/convert_weights.py', '--input', evil, '--output',
                    str(tmp_path / 'm.safetensors')],
        'pretrained': ['train.py', '--config', cfg, '--save_dir', save,
                       '--opts', 'model.pretrained={}'.format(evil)],
        'resume': ['train.py', '--config', cfg, '--save_dir', save,
                   '--resume_model', str(tmp_path / 'out' / 'iter_9')],
        'listing': ['train.py', '--config', cfg, '--save_dir', save,
                    '--resume_model', 'auto'],
    }[entry]
    proc = run_script(*args, check=False)
    assert not marker.exists(), 'the file ran code'
    if entry == 'listing':
        # The unsafe state is refused while listing: that folder is not a
        # checkpoint to resume from; training starts at 0 and succeeds.
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert (tmp_path / 'out' / 'iter_4').is_dir()
        return
    _one_error(proc, 'Refusing to load', 'posix.system')


def test_safetensors_round_trip_loads_like_pdparams(tiny, tmp_path):
    base, data, cfg = tiny
    pdparams = str(base / 'run' / 'iter_4' / 'model.pdparams')
    st = str(tmp_path / 'model.safetensors')
    run_script('tools/convert_weights.py', '--input', pdparams, '--output',
               st)
    back = str(tmp_path / 'back.pdparams')
    run_script('tools/convert_weights.py', '--input', st, '--output', back)
    a = paddle.load(pdparams)
    b = paddle.load(back)
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())
    val_pd = run_script('val.py', '--config', cfg, '--model_path', pdparams)
    val_st = run_script('val.py', '--config', cfg, '--model_path', st)
    assert val_pd.stdout.splitlines()[-1] == val_st.stdout.splitlines()[-1]


def test_another_models_checkpoint_is_refused(tiny, tmp_path):
    base, data, cfg = tiny
    other = tmp_path / 'ccnet.yml'
    other.write_text(open(cfg).read().replace('type: FCN', 'type: CCNet')
                     .replace('  backbone_indices: [-1]\n', ''))
    proc = run_script('val.py', '--config', str(other), '--model_path',
                      str(base / 'run' / 'iter_4' / 'model.pdparams'),
                      check=False)
    _one_error(proc, 'would leave', 'unset', 'head.')


# -- the loader cannot hang ----------------------------------------------------

def _break(data, how):
    """Damage one training sample of a copy of ``data`` as ``how`` says;
    returns the file damaged."""
    import cv2
    labels = sorted(glob.glob(os.path.join(data, 'gtFine', 'train', '*',
                                           '*.png')))
    images = sorted(glob.glob(os.path.join(data, 'leftImg8bit', 'train',
                                           '*', '*.png')))
    if how == 'label_size':
        label = cv2.imread(labels[1], cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(labels[1], label[:10, :20])
        return labels[1]
    if how == 'label_channels':
        label = cv2.imread(labels[1], cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(labels[1], np.stack([label] * 3, -1))
        return labels[1]
    if how == 'label_value':
        label = cv2.imread(labels[1], cv2.IMREAD_GRAYSCALE)
        label[0, 0] = 77
        cv2.imwrite(labels[1], label)
        return labels[1]
    if how == 'empty_image':
        open(images[1], 'wb').close()
        return images[1]
    if how == 'text_image':
        with open(images[1], 'w') as f:
            f.write('not an image\n')
        return images[1]
    raise ValueError(how)


@pytest.mark.timeout(240)
@pytest.mark.parametrize('workers', [0, 2])
@pytest.mark.parametrize('how, words', [
    ('label_size', ['is 10x20 (HxW) but its image']),
    ('label_channels', ['has shape', 'single-channel']),
    ('label_value', ['holds values [77]']),
    ('empty_image', ['is empty (0 bytes)']),
    ('text_image', ['cannot be decoded']),
])
def test_a_bad_sample_ends_training_naming_the_file(tmp_path, workers, how,
                                                    words):
    data = make_tiny_data(tmp_path)
    bad = _break(data, how)
    cfg = write_train_config(tmp_path / 'c.yml', iters=6, data=data)
    start = time.time()
    proc = run_script('train.py', '--config', cfg, '--save_dir',
                      str(tmp_path / 'out'), '--num_workers', str(workers),
                      check=False, timeout=200)
    line = _one_error(proc, os.path.basename(bad), *words)
    assert time.time() - start < 120, line


def test_batch_larger_than_the_dataset_is_a_config_error(tiny, tmp_path):
    base, data, cfg = tiny
    proc = run_script('train.py', '--config', cfg, '--batch_size', '64',
                      '--save_dir', str(tmp_path / 'out'), check=False,
                      timeout=200)
    _one_error(proc, 'batch_size 64', 'training set has 6')


def test_image_declaring_too_many_pixels_is_refused_before_decoding(tmp_path):
    from PIL import Image
    from paddleseg.transforms import functional as F
    from paddleseg.utils.errors import DataError
    path = str(tmp_path / 'huge.png')
    Image.new('L', (6000, 5000)).save(path)  # a few KB, 30 megapixels
    os.environ[F.MAX_PIXELS_ENV] = '10000000'
    try:
        with pytest.raises(DataError, match='declares 6000x5000 pixels.*'
                           'PADDLESEG_MAX_IMAGE_PIXELS'):
            F.read_image(path)
    finally:
        del os.environ[F.MAX_PIXELS_ENV]
    assert F.read_image(path).shape == (5000, 6000, 3)  # default limit


def test_16_bit_images_are_reduced_with_a_warning(tmp_path, monkeypatch):
    import cv2
    from paddleseg.transforms import functional as F
    path = str(tmp_path / 'deep.png')
    cv2.imwrite(path, np.full((4, 5, 3), 51400, np.uint16))
    said = []
    monkeypatch.setattr(F.logger, 'warning',
                        lambda msg, *a: said.append(msg % a))
    img = F.read_image(path)
    assert img.dtype == np.uint8 and int(img.max()) == 51400 // 256
    F.read_image(path)  # once per file
    assert len(said) == 1 and 'deep.png' in said[0] and '8 bits' in said[0]


def test_paths_leaving_dataset_root_are_named(tmp_path, monkeypatch):
    from paddleseg.datasets import Dataset
    from paddleseg.datasets import dataset as dataset_module
    data = make_tiny_data(tmp_path)
    img = glob.glob(os.path.join(data, 'leftImg8bit', 'train', '*',
                                 '*.png'))[0]
    lab = glob.glob(os.path.join(data, 'gtFine', 'train', '*', '*.png'))[0]
    root = tmp_path / 'root'
    root.mkdir()
    lst = root / 'train.txt'
    lst.write_text('{} {}\n'.format(os.path.relpath(img, root),
                                    os.path.relpath(lab, root)))
    said = []
    monkeypatch.setattr(dataset_module.logger, 'warning',
                        lambda msg, *a: said.append(msg % a))
    Dataset('train', str(root), 19, [], train_path=str(lst))
    assert len(said) == 1 and 'outside dataset_root' in said[0]
    assert os.path.basename(img) in said[0]


# -- signals -------------------------------------------------------------------

@pytest.mark.timeout(400)
@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_between_steps_and_the_run_resumes_exactly(
        tiny, tmp_path, signum):
    base, data, _ = tiny
    cfg = write_train_config(tmp_path / 'c.yml', iters=24, data=data)
    common = ['train.py', '--config', cfg, '--save_interval', '3', '--seed',
              '5', '--log_iters', '1', '--num_workers', '2']
    ref, stopped = tmp_path / 'ref', tmp_path / 'stopped'
    run_script(*common, '--save_dir', str(ref))
    proc = subprocess.Popen([sys.executable] + common + ['--save_dir',
                                                         str(stopped)],
                            cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (stopped / 'iter_6').is_dir() and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err[-2000:]
    name = signal.Signals(signum).name
    assert 'Stopped by {} after iteration'.format(name) in err
    assert not (stopped / 'iter_24').exists(), 'finished before the signal'
    time.sleep(1)
    assert not processes_naming(stopped), 'loader processes were left behind'
    run_script(*common, '--save_dir', str(stopped), '--resume_model', 'auto')
    a = paddle.load(str(ref / 'iter_24' / 'model.pdparams'))
    b = paddle.load(str(stopped / 'iter_24' / 'model.pdparams'))
    for key in a:
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), key)


# -- one run per save_dir ------------------------------------------------------

@pytest.mark.timeout(400)
def test_a_second_run_into_a_busy_save_dir_is_refused(tiny, tmp_path):
    base, data, _ = tiny
    cfg = write_train_config(tmp_path / 'c.yml', iters=400, data=data)
    out = tmp_path / 'out'
    first = subprocess.Popen([sys.executable, 'train.py', '--config', cfg,
                              '--save_dir', str(out), '--log_iters', '1'],
                             cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        for line in first.stdout:  # wait until it trains
            if '[TRAIN]' in line:
                break
        config_before = (out / 'config.yml').read_text()
        second = run_script('train.py', '--config', cfg, '--save_dir',
                            str(out), '--iters', '2', check=False)
        _one_error(second, 'is in use by another training run',
                   'pid {}'.format(first.pid))
        assert (out / 'config.yml').read_text() == config_before
    finally:
        first.kill()
        first.wait()
    # The killed run's lock is taken over, with a message.
    third = run_script('train.py', '--config', cfg, '--save_dir', str(out),
                       '--iters', '2', '--save_interval', '2')
    assert 'Taking over' in third.stdout + third.stderr
    assert 'pid {}'.format(first.pid) in third.stdout + third.stderr


def test_leftovers_are_cleaned_and_foreign_folders_named(tiny, tmp_path):
    base, data, cfg = tiny
    out = tmp_path / 'out'
    for name in ('iter_3.deleting', 'iter_5.tmp', 'iter_1.old', 'iter_7'):
        (out / name).mkdir(parents=True)
    proc = run_script('train.py', '--config', cfg, '--save_dir', str(out),
                      '--save_interval', '2')
    said = proc.stdout + proc.stderr
    assert said.count('left by an interrupted run') == 1
    assert 'iter_3.deleting' in said and 'iter_5.tmp' in said
    assert said.count('without a training state') == 1  # once, not per save
    assert sorted(p.name for p in out.glob('iter_*')) == [
        'iter_2', 'iter_4', 'iter_7']


# -- resume --------------------------------------------------------------------

def test_resuming_an_older_checkpoint_moves_the_newer_ones_aside(tiny,
                                                                 tmp_path):
    base, data, _ = tiny
    cfg = write_train_config(tmp_path / 'c.yml', iters=8, data=data)
    out = tmp_path / 'out'
    common = ['train.py', '--config', cfg, '--save_interval', '2',
              '--keep_checkpoint_max', '2', '--seed', '1']
    run_script(*common, '--save_dir', str(tmp_path / 'ref'))
    run_script(*common, '--save_dir', str(out), '--keep_checkpoint_max',
               '5')  # iter_2, 4, 6, 8
    proc = run_script(*common, '--save_dir', str(out), '--resume_model',
                      str(out / 'iter_2'))
    assert 'moved the newer checkpoint(s) iter_4, iter_6, iter_8 aside' in \
        proc.stdout + proc.stderr
    assert sorted(p.name for p in (out / 'abandoned').iterdir()) == [
        'iter_4', 'iter_6', 'iter_8']
    # keep-max kept the resumed run's own newest two, not the stale ones.
    assert sorted(p.name for p in out.glob('iter_*')) == ['iter_6', 'iter_8']
    a = paddle.load(str(tmp_path / 'ref' / 'iter_8' / 'model.pdparams'))
    b = paddle.load(str(out / 'iter_8' / 'model.pdparams'))
    for key in a:
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), key)


def test_resuming_with_another_batch_size_is_refused_unless_allowed(
        tiny, tmp_path):
    base, data, cfg = tiny
    ckpt = str(base / 'run' / 'iter_2')
    proc = run_script('train.py', '--config', cfg, '--save_dir',
                      str(tmp_path / 'a'), '--resume_model', ckpt,
                      '--batch_size', '3', check=False)
    _one_error(proc, 'batch_size 2 -> 3', '--allow_resume_changes')
    proc = run_script('train.py', '--config', cfg, '--save_dir',
                      str(tmp_path / 'b'), '--resume_model', ckpt,
                      '--batch_size', '3', '--allow_resume_changes')
    assert 'will not equal an uninterrupted run' in proc.stdout + proc.stderr
    assert (tmp_path / 'b' / 'iter_4').is_dir()


def test_state_is_data_not_a_pickle(tiny):
    base, _, _ = tiny
    folder = base / 'run' / 'iter_4'
    assert not (folder / 'train_state.pkl').exists()
    state = json.loads((folder / 'train_state.json').read_text())
    assert state['iter'] == 4 and state['run']['batch_size'] == 2
    assert set(state['rng']) == {'python', 'numpy', 'paddle'}


# -- divergence ----------------------------------------------------------------

def test_a_diverging_run_keeps_its_last_finite_checkpoint(tiny, tmp_path):
    base, data, cfg = tiny
    out = tmp_path / 'out'
    proc = run_script('train.py', '--config', cfg, '--save_dir', str(out),
                      '--iters', '40', '--save_interval', '1',
                      '--learning_rate', '1e8', check=False)
    line = _one_error(proc, 'iteration')
    assert 'non-finite' in line or 'no longer finite' in line
    from paddleseg.core.checkpointer import (latest_checkpoint,
                                             non_finite_parameters)
    from paddleseg.utils.weights import read_state_file
    latest = latest_checkpoint(str(out))
    assert latest is not None
    for path in glob.glob(str(out / 'iter_*' / 'model.pdparams')):
        state = read_state_file(path)
        assert all(np.isfinite(v).all() for v in state.values()), path
    assert non_finite_parameters is not None


def test_non_finite_weights_are_never_written(tmp_path):
    from paddleseg.core import checkpointer
    from paddleseg.utils.errors import TrainingError
    layer = paddle.nn.Linear(2, 2)
    checkpointer.save_checkpoint(str(tmp_path), 'iter_1', layer, None,
                                 {'iter': 1})
    layer.weight.set_value(paddle.full([2, 2], float('nan')))
    with pytest.raises(TrainingError, match='no longer finite.*weight'):
        checkpointer.save_checkpoint(str(tmp_path), 'iter_2', layer, None,
                                     {'iter': 2})
    assert sorted(os.listdir(tmp_path)) == ['iter_1']


# -- inputs that used to end in a traceback --------------------------------------

@pytest.mark.parametrize('setup, opts, words', [
    ('dup', [], ["key 'batch_size' is given twice"]),
    ('deep', [], ['more than 64 files deep']),
    (None, ['test_config.scales=["a", "b"]'], ['test_config.scales']),
    (None, ['test_config.crop_size=[769]'], ['test_config.crop_size']),
    (None, ['lr_scheduler.learning_rate=0'], ['must be positive, got 0']),
])
def test_config_mistakes_are_one_line(tiny, tmp_path, setup, opts, words):
    base, data, cfg = tiny
    if setup == 'dup':
        path = tmp_path / 'dup.yml'
        path.write_text(open(cfg).read() + 'batch_size: 4\n')
        cfg = str(path)
    elif setup == 'deep':
        (tmp_path / 'c0.yml').write_text(open(cfg).read())
        for i in range(1, 80):
            (tmp_path / 'c{}.yml'.format(i)).write_text(
                "_base_: c{}.yml\n".format(i - 1))
        cfg = str(tmp_path / 'c79.yml')
    args = ['train.py', '--config', cfg, '--save_dir', str(tmp_path / 'o')]
    if opts:
        args += ['--opts'] + opts
    _one_error(run_script(*args, check=False), *words)


@pytest.mark.parametrize('kind', ['file', 'readonly'])
def test_unusable_save_dir_is_one_line(tiny, tmp_path, kind):
    base, data, cfg = tiny
    target = tmp_path / 'target'
    if kind == 'file':
        target.write_text('x')
        words = ['is a file, not a folder']
    else:
        target.mkdir()
        target.chmod(0o500)
        words = ['not writable']
        if os.access(str(target), os.W_OK):  # root ignores the mode
            pytest.skip('running as root: a read-only folder is writable')
    proc = run_script('train.py', '--config', cfg, '--save_dir', str(target),
                      check=False)
    _one_error(proc, str(target), *words)


def test_export_input_channels_must_match_the_model(tiny, tmp_path):
    base, data, cfg = tiny
    proc = run_script('export.py', '--config', cfg, '--model_path',
                      str(base / 'run' / 'iter_4' / 'model.pdparams'),
                      '--save_dir', str(tmp_path / 'e'), '--input_shape',
                      '1', '4', '32', '64', check=False)
    _one_error(proc, '--input_shape gives 4 channels', 'takes 3')


def test_ignore_index_inside_the_classes_is_named(tmp_path, monkeypatch):
    from paddleseg.datasets import Cityscapes
    from paddleseg.datasets import dataset as dataset_module
    data = make_tiny_data(tmp_path)
    said = []
    monkeypatch.setattr(dataset_module.logger, 'warning',
                        lambda msg, *a: said.append(msg % a))
    dataset = Cityscapes([], data, mode='val')
    dataset.ignore_index = 11
    dataset._warn_if_ignoring_a_class()
    assert len(said) == 1 and "class 11 ('person')" in said[0]


def test_infer_on_an_empty_image_is_one_line(tiny, tmp_path):
    base, data, cfg = tiny
    export_dir = tmp_path / 'model'
    run_script('export.py', '--config', cfg, '--model_path',
               str(base / 'run' / 'iter_4' / 'model.pdparams'), '--save_dir',
               str(export_dir))
    empty = tmp_path / 'empty.png'
    empty.write_bytes(b'')
    proc = run_script('deploy/python/infer.py', '--config',
                      str(export_dir / 'deploy.yaml'), '--image_path',
                      str(empty), '--save_dir', str(tmp_path / 'o'),
                      check=False)
    _one_error(proc, 'empty.png', 'is empty (0 bytes)')
