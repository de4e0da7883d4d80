"""End to end through the root scripts, as a user runs them: train -> val ->
predict (with the Cityscapes submission and the results page) -> export ->
deploy/python/infer.py on tiny demo data, bad input, SIGKILL + resume and a
2-process launch (both with class-uniform sampling)."""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from script_helpers import (make_tiny_data, run_script,  # noqa: E402
                            write_train_config)

@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    """(folder, tiny.yml) of the tiny demo data and a 4-iteration FCN."""
    base = tmp_path_factory.mktemp('e2e')
    data = make_tiny_data(base)
    return base, write_train_config(base / 'tiny.yml', iters=4, data=data)


@pytest.fixture(scope='module')
def cu_data(demo):
    """Demo data with enough images for class-uniform crops: int(16 / 7) = 2
    per class of the 7 demo classes at class_uniform_pct 1."""
    import pathlib
    return pathlib.Path(make_tiny_data(demo[0], num_train=16, seed=1,
                                       name='cu_data'))


CLASS_UNIFORM = ['train_dataset.class_uniform_pct=1.0',
                 'train_dataset.class_uniform_tile=16']


def run(*args, env=None, check=True):
    return run_script(*args, env=env, check=check)


def test_train_val_predict(demo):
    base, cfg = demo
    out = base / 'out'
    run('train.py', '--config', cfg, '--do_eval', '--save_interval', '2',
        '--save_dir', str(out), '--use_vdl')
    for name in ('iter_2', 'iter_4', 'best_model'):
        assert (out / name / 'model.pdparams').is_file()
    assert (out / 'iter_4' / 'model.pdopt').is_file()
    assert (out / 'config.yml').is_file() and (out / 'env.json').is_file()
    assert any((out / 'vdl').iterdir())
    proc = run('val.py', '--config', cfg, '--model_path',
               str(out / 'iter_4' / 'model.pdparams'), '--save_dir', str(out))
    last = proc.stdout.strip().splitlines()[-1]
    assert re.search(r'mIoU: \d\.\d{4} Acc: \d\.\d{4} Kappa: -?\d\.\d{4} '
                     r'Dice: \d\.\d{4}', last), last
    assert (out / 'metrics.json').is_file()
    pred_dir = base / 'pred'
    run('predict.py', '--config', cfg, '--model_path',
        str(out / 'iter_4' / 'model.pdparams'), '--image_path',
        str(base / 'data' / 'leftImg8bit' / 'val'), '--save_dir',
        str(pred_dir), '--dump_for_submission', '--dump_assets')
    from PIL import Image
    pngs = sorted((pred_dir / 'pseudo_color_prediction').rglob('*.png'))
    assert len(pngs) == 2
    im = Image.open(pngs[0])
    assert im.mode == 'P' and im.size == (64, 32)
    assert np.asarray(im).max() < 19
    assert len(list((pred_dir / 'added_prediction').rglob('*.png'))) == 2
    submit = sorted((pred_dir / 'submit').rglob('*.png'))
    assert [p.relative_to(pred_dir / 'submit') for p in submit] == [
        p.relative_to(pred_dir / 'pseudo_color_prediction') for p in pngs]
    from paddleseg.datasets.cityscapes import train_ids_to_label_ids
    np.testing.assert_array_equal(np.asarray(Image.open(submit[0])),
                                  train_ids_to_label_ids(np.asarray(im)))
    page = (pred_dir / 'index.html').read_text()
    assert page.count('<tr>') == 3 and 'composite' in page
    export_dir = base / 'inference_model'
    run('export.py', '--config', cfg, '--model_path',
        str(out / 'iter_4' / 'model.pdparams'), '--save_dir', str(export_dir))
    assert sorted(os.listdir(export_dir)) == ['deploy.yaml', 'model.json',
                                              'model.pdiparams']
    run(os.path.join('deploy', 'python', 'infer.py'), '--config',
        str(export_dir / 'deploy.yaml'), '--image_path',
        str(base / 'data' / 'leftImg8bit' / 'val'), '--save_dir',
        str(base / 'infer'), '--dump_for_submission')
    for png in pngs + submit:
        other = base / 'infer' / png.relative_to(pred_dir)
        assert (np.asarray(Image.open(other)) == np.asarray(Image.open(png))
                ).mean() >= 0.999


@pytest.mark.parametrize('args, expected', [
    (['train.py', '--config', 'nope.yml'], "Config file 'nope.yml' does not "
     'exist'),
    (['train.py', '--config', '{cfg}', '--opts', 'batch_sise=2'],
     "Unknown key 'batch_sise'"),
    (['train.py', '--config', '{cfg}', '--opts',
      'train_dataset.dataset_root=/no/such/dir'], '/no/such/dir'),
    (['val.py', '--config', '{cfg}', '--model_path', '/no/model.pdparams'],
     '/no/model.pdparams'),
    (['train.py', '--config', '{cfg}', '--resume_model', '/no/ckpt'],
     '/no/ckpt'),
    (['export.py', '--config', '{cfg}', '--model_path', '/no/model.pdparams'],
     '/no/model.pdparams'),
    (['deploy/python/infer.py', '--config', '/no/deploy.yaml',
      '--image_path', 'README.md'], "'/no/deploy.yaml' does not exist"),
])
def test_bad_input_is_one_clear_line(demo, args, expected):
    _, cfg = demo
    proc = run(*[a.format(cfg=cfg) for a in args], check=False)
    assert proc.returncode == 2
    assert 'Traceback' not in proc.stderr
    errors = [l for l in proc.stderr.splitlines() if l.startswith('Error: ')]
    assert len(errors) == 1 and expected in errors[0], proc.stderr[-2000:]


def _weights(path):
    import paddle
    return {k: v.numpy() for k, v in paddle.load(str(path)).items()}


def test_sigkill_then_resume_matches_uninterrupted(demo, cu_data):
    # With class-uniform sampling: 8 batches an epoch, so the 30 iterations
    # cross three boundaries of composed epochs.
    base, _ = demo
    cfg = base / 'resume.yml'
    write_train_config(cfg, iters=30, data=cu_data)
    ref, killed = base / 'ref', base / 'killed'
    common = ['train.py', '--config', str(cfg), '--save_interval', '3',
              '--seed', '5', '--log_iters', '1', '--opts'] + CLASS_UNIFORM
    run(*common, '--save_dir', str(ref))
    proc = subprocess.Popen([sys.executable] + common +
                            ['--save_dir', str(killed)], cwd=ROOT,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (killed / 'iter_3').is_dir() and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / 'iter_30').exists(), 'finished before the kill'
    run(*common, '--save_dir', str(killed), '--resume_model', 'auto')
    a = _weights(ref / 'iter_30' / 'model.pdparams')
    b = _weights(killed / 'iter_30' / 'model.pdparams')
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_two_process_cpu_launch(demo, cu_data):
    # With class-uniform sampling: local rank 0 builds the index, rank 1
    # waits for its file (NVIDIA#127 broke on two GPUs).
    base, cfg = demo
    out = base / 'dist'
    import shutil
    shutil.rmtree(cu_data / '.class_uniform', ignore_errors=True)
    proc = run('-m', 'paddle.distributed.launch', '--nproc_per_node', '2',
               '--log_dir', str(base / 'dist_log'), 'train.py', '--config',
               cfg, '--iters', '2', '--save_interval', '2', '--do_eval',
               '--save_dir', str(out), '--opts',
               'train_dataset.dataset_root={}'.format(cu_data), *CLASS_UNIFORM,
               check=False)
    logs = ''.join(p.read_text() for p in (base / 'dist_log').glob('work*'))
    assert proc.returncode == 0, proc.stdout[-2000:] + logs[-4000:]
    assert (out / 'iter_2' / 'model.pdparams').is_file()
    import json
    assert json.loads((out / 'env.json').read_text())['world_size'] == 2
    assert len(os.listdir(cu_data / '.class_uniform')) == 1


@pytest.mark.parametrize('name', ['ocrnet_hrnetw18small_demo.yml',
                                  'mscale_ocrnet_hrnetw18small_demo.yml',
                                  'acfnet_resnet18_demo.yml'])
def test_quick_start_trains(demo, name):
    """Each model's quick start as shipped (its model, losses, optimizer and
    transforms), two iterations on the tiny data: the run ends with a finite
    loss and a checkpoint."""
    base, _ = demo
    data, out = base / 'data', base / ('quick_' + name[:-4])
    proc = run('train.py', '--config',
               os.path.join(ROOT, 'configs', 'quick_start', name),
               '--iters', '2', '--batch_size', '2', '--save_interval', '2',
               '--log_iters', '1', '--save_dir', str(out), '--opts',
               'train_dataset.dataset_root={}'.format(data),
               'val_dataset.dataset_root={}'.format(data),
               'lr_scheduler.warmup_iters=1')
    losses = [float(v) for v in re.findall(r'loss: ([-+\w.]+),',
                                           proc.stdout + proc.stderr)]
    assert len(losses) == 2 and np.isfinite(losses).all(), losses
    assert (out / 'iter_2' / 'model.pdparams').is_file()
