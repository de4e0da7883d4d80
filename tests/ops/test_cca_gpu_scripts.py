"""The GPU scripts without a GPU: benchmarks/gpu/run_all.sh is valid bash
and its dry run plans every step; the harness (benchmarks/gpu/cca_gpu.py)
imports and parses its arguments without PyTorch, writes where it is told,
and never lets a NaN pass a check."""

import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
GPU = os.path.join(ROOT, 'benchmarks', 'gpu')
RUN_ALL = os.path.join(GPU, 'run_all.sh')


@pytest.fixture(scope='module')
def harness():
    spec = importlib.util.spec_from_file_location(
        'cca_gpu', os.path.join(GPU, 'cca_gpu.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_all_is_valid_bash():
    subprocess.run(['bash', '-n', RUN_ALL], check=True)


def test_run_all_dry_run_plans_every_step(tmp_path):
    out = tmp_path / 'out'
    proc = subprocess.run(['bash', RUN_ALL, '--dry-run', str(out)],
                          capture_output=True, text=True,
                          env=dict(os.environ, PYTHON=sys.executable))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = (out / 'run_all.log').read_text()
    for expected in ['nvcc', '-Xptxas -v', 'cca_cuda_selftest.cu',
                     '--time 2,64,512,97,97', 'cca_gpu.py --out ' + str(out),
                     '--designs simt,tiled,tiled_tf32'] + [
                         '--tool ' + t for t in ('memcheck', 'racecheck',
                                                 'initcheck', 'synccheck')]:
        assert expected in log, expected
    summary = (out / 'summary.md').read_text()
    assert summary.count("| dry run |") == 9
    # The device tool brings back at most 8 files from OUT.
    assert len(os.listdir(out)) <= 8


def test_run_all_needs_an_output_folder():
    proc = subprocess.run(['bash', RUN_ALL], capture_output=True, text=True)
    assert proc.returncode == 2 and 'usage' in proc.stderr


def test_harness_imports_its_helpers_up_front_and_not_torch(harness):
    from benchmarks import common
    assert harness.write_results is common.write_results
    assert 'torch' not in sys.modules or sys.modules['torch'] is not None


def test_harness_parses_arguments_without_a_gpu(harness, tmp_path, capsys):
    args = harness.parse_args(['--out', str(tmp_path)])
    assert args.designs == ['simt', 'tiled', 'tiled_tf32'] and \
        args.repeat == 20
    with pytest.raises(SystemExit):
        harness.parse_args([])  # --out is required
    with pytest.raises(SystemExit):
        harness.parse_args(['--out', str(tmp_path), '--designs', 'fast'])
    assert harness.main(['--out', str(tmp_path), '--dry-run']) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan['out'] == str(tmp_path)
    assert [tuple(s) for s in plan['time_shapes']] == [
        (2, 512, 97, 97), (4, 512, 128, 256), (1, 512, 384, 384)]
    assert all(os.path.isfile(s) for s in plan['sources'])
    shapes = [tuple(s) for s in plan['check_shapes']]
    assert any(s[3] == 1 for s in shapes) and any(s[4] == 1 for s in shapes)
    assert any(s[0] > 1 for s in shapes)
    assert any(s[3] > 64 for s in shapes) and any(s[4] > 64 for s in shapes)
    assert any(s[1] > 64 and s[2] > 64 and s[2] % 64 for s in shapes)


def test_harness_pass_rule_refuses_nan_and_inf(harness):
    assert harness.passes([1e-6, 0.0, 2e-6, 1e-7], 1e-5)
    for bad in (float('nan'), float('inf'), 1e-3):
        # max([1e-6, nan]) is 1e-6: max() would have passed the NaN.
        assert not harness.passes([1e-6, bad, 2e-6, 1e-7], 1e-5)


def test_harness_writes_where_told_and_marks_failures(harness, tmp_path):
    payload = {
        'gpu': 'test', 'torch': '0', 'cuda': '0', 'repeat': 1,
        'check': [{'shape': [1, 2, 3, 4, 5], 'dtype': 'float32',
                   'design': 'tiled', 'tolerance': 1e-4,
                   'errors': [1e-7, float('nan'), 0.0, 0.0],
                   'deterministic': True, 'ok': False}],
        'timing': [{'shape': [2, 512, 97, 97], 'dtype': 'float32',
                    'result': {
                        'native_tiled': {'forward': 1e-3,
                                         'forward_backward': 3e-3,
                                         'peak_extra_mb': 10.0},
                        'torch_einsum': {'forward': 2e-3,
                                         'forward_backward': 6e-3,
                                         'peak_extra_mb': 40.0},
                        'native_simt': {'error': 'CUDA out of memory'}}}]}
    md = harness.markdown(payload)
    assert '**NO**' in md and 'nan' in md
    assert 'native_tiled (check failed)' in md
    assert '| 0.50 | 0.50 |' in md  # ratios against einsum
    assert 'CUDA out of memory' in md
    harness.write_results('cca_gpu', payload, md, directory=str(tmp_path))
    assert (tmp_path / 'cca_gpu.md').read_text() == md
    saved = json.loads((tmp_path / 'cca_gpu.json').read_text())
    assert math.isnan(saved['check'][0]['errors'][1])
