"""The TIPC lite chain (test_tipc/): the key reader and result lines of
common_func.sh, the scripts' refusal of bad input, and prepare.sh plus the
CCNet chain end to end."""

import glob
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIPC = os.path.join(ROOT, 'test_tipc')
COMMON = os.path.join(TIPC, 'common_func.sh')
CCNET_TXT = os.path.join(TIPC, 'configs', 'ccnet', 'train_infer_python.txt')
MODE = 'lite_train_lite_infer'

KEYS = """===========================train_params===========================
model_name:ccnet
--batch_size_eval:8
--batch_size:2
--iters:{mode}=20|whole_train_whole_infer=500
--opts:{mode}=lr_scheduler.warmup_iters=2
--enable_mkldnn:True|False
norm_train:train.py --save_interval 5
Global.use_gpu:False
--whole_only:whole_train_whole_infer=1
##
===========================infer_params===========================
null:null
null:null
""".format(mode=MODE)


def bash(script, *args, env=None):
    """Run ``script`` in bash with common_func.sh sourced; $1.. are args."""
    return subprocess.run(
        ['bash', '-c', 'source "{}"\n{}'.format(COMMON, script), 'bash'] +
        [str(a) for a in args], cwd=ROOT, capture_output=True, text=True,
        env=dict(os.environ, **(env or {})), timeout=60)


def read(txt, key, mode=None):
    if mode is None:
        return bash('func_parser_value "$1" "$2"', txt, key)
    return bash('func_parser_mode_value "$1" "$2" "$3"', txt, key, mode)


@pytest.fixture
def shuffled_txt(tmp_path):
    lines = KEYS.splitlines()
    random.Random(0).shuffle(lines)
    assert lines != KEYS.splitlines()
    path = tmp_path / 'train_infer_python.txt'
    path.write_text('\n'.join(lines) + '\n')
    return path


@pytest.mark.parametrize('key, mode, expected', [
    ('model_name', None, 'ccnet'),
    ('--batch_size', None, '2'),  # not --batch_size_eval, whatever the order
    ('--batch_size_eval', None, '8'),
    ('Global.use_gpu', None, 'False'),
    ('norm_train', None, 'train.py --save_interval 5'),
    ('--iters', None, MODE + '=20|whole_train_whole_infer=500'),
    ('--iters', MODE, '20'),
    ('--opts', MODE, 'lr_scheduler.warmup_iters=2'),
    ('--enable_mkldnn', MODE, 'True|False'),  # a list, not per mode
])
def test_keys_are_read_by_name_in_any_order(shuffled_txt, key, mode,
                                            expected):
    proc = read(shuffled_txt, key, mode)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == expected + '\n'


def test_crlf_line_ends_are_ignored(tmp_path):
    path = tmp_path / 'crlf.txt'
    path.write_bytes(b'model_name:fcn\r\n--iters:lite_train_lite_infer=7\r\n')
    assert read(path, 'model_name').stdout == 'fcn\n'
    assert read(path, '--iters', MODE).stdout == '7\n'


def test_missing_key_is_a_clear_error(shuffled_txt):
    proc = read(shuffled_txt, '--cpu_threads')
    assert proc.returncode == 1 and proc.stdout == ''
    assert ("key '--cpu_threads' is missing from {}; add a line "
            "'--cpu_threads:<value>'".format(shuffled_txt)) in proc.stderr


def test_value_for_other_modes_only_is_an_error(shuffled_txt):
    proc = read(shuffled_txt, '--whole_only', MODE)
    assert proc.returncode == 1 and proc.stdout == ''
    assert 'no entry for mode ' + MODE in proc.stderr


def test_duplicate_keys_are_listed(tmp_path):
    path = tmp_path / 'dup.txt'
    path.write_text(KEYS + '--iters:lite_train_lite_infer=3\n'
                    'model_name:fcn\nmodel_name:x\n')
    proc = bash('func_duplicate_keys "$1"', path)
    assert proc.stdout.split() == ['--iters', 'model_name']


def test_status_check_appends_result_lines_and_counts_failures(tmp_path):
    log = tmp_path / 'results_python.log'
    proc = bash('status_check 0 "python3 train.py --iters 2" "$1"\n'
                'status_check 3 "python3 val.py" "$1"; echo "rc=$?"\n'
                'echo "failures=$TIPC_FAILURES"', log)
    assert log.read_text().splitlines() == [
        'Run successfully with command - python3 train.py --iters 2!',
        'Run failed with command - python3 val.py!']
    assert proc.stdout.splitlines()[-2:] == ['rc=3', 'failures=1']


@pytest.mark.parametrize('script', ['prepare.sh',
                                    'test_train_inference_python.sh'])
def test_unknown_mode_exits_2(script):
    proc = subprocess.run(['bash', os.path.join(TIPC, script), CCNET_TXT,
                           'whole_train_whole_infer'], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "mode 'whole_train_whole_infer' is not supported" in proc.stderr


def test_chain_refuses_a_txt_with_a_repeated_key(tmp_path):
    txt = tmp_path / 'dup.txt'
    with open(CCNET_TXT) as f:
        txt.write_text(f.read() + 'model_name:other\n')
    proc = subprocess.run(
        ['bash', os.path.join(TIPC, 'test_train_inference_python.sh'),
         str(txt), MODE], cwd=ROOT, capture_output=True, text=True,
        env=dict(os.environ, TIPC_OUTPUT_DIR=str(tmp_path / 'out')),
        timeout=60)
    assert proc.returncode == 2
    assert 'more than once' in proc.stderr and 'model_name' in proc.stderr
    assert not (tmp_path / 'out').exists()


def _label_maps(folder):
    from PIL import Image
    paths = sorted(glob.glob(os.path.join(folder, 'pseudo_color_prediction',
                                          '**', '*.png'), recursive=True))
    return [np.asarray(Image.open(p)) for p in paths]


def test_ccnet_lite_chain(tmp_path):
    # Installing is the venv's job in CI; the native op builds under
    # conftest's temporary PADDLE_EXTENSION_DIR, Paddle's caches under HOME.
    env = dict(os.environ, PYTHON=sys.executable, TIPC_SKIP_INSTALL='1',
               TIPC_OUTPUT_DIR=str(tmp_path / 'output'),
               HOME=str(tmp_path / 'home'))
    os.makedirs(env['HOME'])
    for script in ('prepare.sh', 'test_train_inference_python.sh'):
        proc = subprocess.run(['bash', os.path.join(TIPC, script), CCNET_TXT,
                               MODE], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=900)
        assert proc.returncode == 0, '{} failed:\n{}\n{}'.format(
            script, proc.stdout[-4000:], proc.stderr[-4000:])

    out = tmp_path / 'output' / 'ccnet' / MODE
    lines = (out / 'results_python.log').read_text().splitlines()
    assert not [l for l in lines if not l.startswith('Run successfully')]
    steps = [(' train.py ', 'paddle.distributed.launch'),
             ('paddle.distributed.launch ', None), (' val.py ', None),
             (' export.py ', None), ('--enable_mkldnn True ', None),
             ('--enable_mkldnn False ', None)]
    assert len(lines) == len(steps)
    for line, (needle, absent) in zip(lines, steps):
        assert needle in line and (absent is None or absent not in line), line

    metrics = json.loads((out / 'eval' / 'metrics.json').read_text())
    assert 0 <= metrics['mIoU'] <= 1
    run_env = json.loads((out / 'train_nproc2' / 'env.json').read_text())
    assert run_env['world_size'] == 2
    with_onednn = _label_maps(out / 'infer_mkldnn_True')
    without = _label_maps(out / 'infer_mkldnn_False')
    num_val = len(os.listdir(os.path.join(ROOT, 'data', 'demo', 'leftImg8bit',
                                          'val', 'demo')))
    assert len(with_onednn) == len(without) == num_val
    for a, b in zip(with_onednn, without):  # oneDNN changes no prediction
        assert a.shape == b.shape and (a == b).mean() >= 0.999
