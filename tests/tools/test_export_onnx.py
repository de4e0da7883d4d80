"""tools/export_onnx.py and paddleseg/deploy/onnx.py: a CCNet (the
pure-Paddle criss-cross attention) converts to ONNX with dynamic sizes and
matches Paddle; a failing or aborting paddle2onnx child becomes one clear
error while the caller lives on; the comparison figures are exact."""

import os
import re
import subprocess
import sys

import numpy as np
import paddle
import pytest

pytest.importorskip('paddle2onnx')
pytest.importorskip('onnxruntime')
onnx = pytest.importorskip('onnx')  # installed with paddle2onnx

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
sys.path.insert(0, os.path.join(ROOT, 'tools'))

import export_onnx  # noqa: E402
from paddleseg.deploy import onnx as onnx_export  # noqa: E402
from paddleseg.deploy.export import ExportedNet  # noqa: E402
from paddleseg.utils import cli  # noqa: E402
from paddleseg.utils.errors import SegError  # noqa: E402

def relative_error(a, b):
    return float(np.abs(a.astype(np.float64) - b).max() / np.abs(b).max())


@pytest.fixture(scope='module')
def ccnet(tmp_path_factory, write_model_config):
    """A random CCNet whose attention is switched on (gamma 1) and
    well-conditioned. Random query weights give energies of 2e3 to 1e4
    here: the softmax is nearly one-hot and near-ties make float32 results
    depend on the order of summation (ONNX vs eager Paddle 4.7e-5 on this
    model, Paddle static vs eager 2.5e-2 on a 256x512 input with random
    BatchNorm statistics). Scaled by 0.05 they lie in a trained model's
    range (|energy| < 100)."""
    base = tmp_path_factory.mktemp('onnx')
    cfg = write_model_config(base / 'ccnet.yml', base / 'no_data_needed')
    from paddleseg.cvlibs import Config, SegBuilder
    paddle.seed(0)
    model = SegBuilder(Config(cfg)).model
    cca = model.head.cca
    cca.gamma.set_value(paddle.to_tensor([1.0]))
    cca.q_conv.weight.set_value(cca.q_conv.weight * 0.05)
    cca.backend = 'reference'  # eager runs the definition, as ONNX does
    model.eval()
    paddle.save(model.state_dict(), str(base / 'model.pdparams'))
    return base, cfg, model


def tool_args(base, cfg, save_file, *extra):
    return ['--config', cfg, '--model_path', str(base / 'model.pdparams'),
            '--save_file', str(save_file), *extra]


def _run_onnx_in_child(onnx_file, x, folder):
    """onnxruntime's output for ``x``, from a child process."""
    np.save(folder / 'x.npy', x)
    code = ('import sys, numpy as np, onnxruntime as ort; '
            's = ort.InferenceSession(sys.argv[1], providers=['
            '"CPUExecutionProvider"]); x = np.load(sys.argv[2]); '
            'np.save(sys.argv[3], s.run(None, {s.get_inputs()[0].name: x})'
            '[0])')
    proc = subprocess.run([sys.executable, '-c', code, str(onnx_file),
                           str(folder / 'x.npy'), str(folder / 'y.npy')],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(folder / 'y.npy')


def test_ccnet_matches_paddle(ccnet):
    """The tool and onnxruntime run in child processes, as a user runs them:
    a crash there fails this test with the child's status and output
    instead of taking the test worker down (one did, once, silently)."""
    base, cfg, model = ccnet
    onnx_file = base / 'out' / 'ccnet.onnx'
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tools', 'export_onnx.py')] +
        tool_args(base, cfg, onnx_file, '--output_op', 'none',
                  '--input_shape', '-1', '3', '-1', '-1',
                  '--check_size', '64', '96'),
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    line = re.search(r'ONNX check: relative error (\S+) \(limit 1e-04\) on '
                     r'input \[1, 3, 64, 96\]', proc.stdout)
    assert line and float(line.group(1)) <= 1e-4
    assert os.listdir(base / 'out') == ['ccnet.onnx']  # no temp file left
    ops = {node.op_type for node in onnx.load(str(onnx_file)).graph.node}
    assert {'MatMul', 'Softmax'} <= ops  # the attention, as plain ONNX ops
    # Sizes stay dynamic: another batch and size than the check's.
    x = np.random.default_rng(1).uniform(-1, 1, (2, 3, 48, 80)).astype(
        np.float32)
    onnx_out = _run_onnx_in_child(onnx_file, x, base)
    with paddle.no_grad():
        eager = ExportedNet(model, 'none')(paddle.to_tensor(x)).numpy()
    assert onnx_out.shape == (2, 19, 48, 80)
    assert relative_error(onnx_out, eager) < 1e-4


def test_argmax_through_cli_boundary(ccnet, capsys, monkeypatch):
    base, cfg, _ = ccnet
    # Ignored for the export (the native operator cannot be converted),
    # restored afterwards.
    monkeypatch.setenv('PADDLESEG_CCA_BACKEND', 'native')
    with pytest.raises(SystemExit) as exit_info:
        cli.run(lambda: export_onnx.main(tool_args(
            base, cfg, base / 'argmax.onnx', '--input_shape', '1', '3', '32',
            '64')), argv=[])
    assert exit_info.value.code == 0
    assert ('ONNX check: pixel agreement 100.000% (limit 99.9%) on input '
            '[1, 3, 32, 64]') in capsys.readouterr().out
    assert os.environ['PADDLESEG_CCA_BACKEND'] == 'native'


def test_aborting_child_is_one_error(ccnet, monkeypatch, capsys):
    base, cfg, _ = ccnet
    out_dir = base / 'aborted'
    monkeypatch.setattr(onnx_export, 'paddle2onnx_command', lambda *a: [
        sys.executable, '-c', 'import os; print("parsing model", flush=True)'
        '; os.abort()'])
    with pytest.raises(SystemExit) as exit_info:
        cli.run(lambda: export_onnx.main(tool_args(
            base, cfg, out_dir / 'x.onnx', '--input_shape', '1', '3', '32',
            '64')), argv=[])
    assert exit_info.value.code == 2  # and this process is still here
    err = capsys.readouterr().err
    assert err.startswith("Error: paddle2onnx could not convert the export "
                          "of '{}'".format(base / 'model.pdparams'))
    assert 'the child process was killed by signal SIGABRT' in err
    assert err.rstrip().endswith('last lines:\nparsing model')
    assert os.listdir(out_dir) == []  # no partial or temporary file


def test_corrupt_model_fails_in_real_paddle2onnx(tmp_path):
    (tmp_path / 'model.json').write_text('{"base_code": {"magic": "pir", ')
    (tmp_path / 'model.pdiparams').write_bytes(b'')
    with pytest.raises(SegError) as info:
        onnx_export.convert_to_onnx(str(tmp_path), str(tmp_path / 'm.onnx'))
    message = str(info.value)
    assert re.search(r"could not convert '.*model\.json': the child process "
                     r'exited with status [1-9]\d*\.', message)
    assert 'parse error' in message
    assert not (tmp_path / 'm.onnx').exists()


def test_child_that_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_export, 'paddle2onnx_command',
                        lambda *a: [sys.executable, '-c', 'pass'])
    with pytest.raises(SegError, match='exited with status 0 but wrote no '
                       r'ONNX file.*last lines:\n\(no output\)'):
        onnx_export.convert_to_onnx(str(tmp_path), str(tmp_path / 'm.onnx'))


def test_missing_tools_say_what_to_install(monkeypatch):
    import importlib.util
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name: (
        None if name == 'onnxruntime' else find_spec(name)))
    with pytest.raises(SegError, match=r'needs onnxruntime, which is not '
                       r'installed; run `pip install paddle2onnx '
                       r'onnxruntime` \(or `pip install -e \.\[onnx\]`\)'):
        onnx_export.require_onnx_tools()


def test_compare_outputs_figures():
    paddle_ids = np.zeros((1, 1, 40, 50), np.int32)
    onnx_ids = paddle_ids.copy()
    onnx_ids.flat[:2] = 1  # 2 of 2000 pixels differ
    assert onnx_export.compare_outputs(onnx_ids, paddle_ids, 'argmax') == (
        'pixel agreement', 0.999, 0.999, True)
    onnx_ids.flat[2] = 1
    assert onnx_export.compare_outputs(onnx_ids, paddle_ids, 'argmax')[
        1:] == (0.9985, 0.999, False)
    ref = np.array([[-4.0, 2.0]], np.float32)
    name, err, _, ok = onnx_export.compare_outputs(
        ref + np.array([[0, 2e-4]], np.float32), ref, 'none')
    assert (name, ok) == ('relative error', True)
    assert err == pytest.approx(5e-5, rel=1e-3)  # 2e-4 / 4
    assert not onnx_export.compare_outputs(ref * 1.001, ref, 'softmax')[3]
    with pytest.raises(SegError, match=r'shape \[1, 1\] where Paddle '
                       r'outputs \[1, 2\]'):
        onnx_export.compare_outputs(ref[:, :1], ref, 'none')


def test_check_runs_both_on_one_input(monkeypatch):
    seen = []

    def fake_run(value):
        def run(path, x):
            seen.append((path, x))
            return np.full((1, 2, 32, 64), value, np.float32)
        return run

    monkeypatch.setattr(onnx_export, 'run_onnx', fake_run(1.0002))
    monkeypatch.setattr(onnx_export, 'run_paddle', fake_run(1.0))
    with pytest.raises(SegError, match=r"'m\.onnx' does not match the Paddle "
                       r'program: relative error 2\.00e-04 \(limit 1e-04\) '
                       r'on input \[1, 3, 32, 64\]; it is written but should '
                       r'not be deployed'):
        onnx_export.check_onnx('m.onnx', 'model_dir', [1, 3, 32, 64], 'none')
    (onnx_path, x), (paddle_dir, x2) = seen
    assert (onnx_path, paddle_dir) == ('m.onnx', 'model_dir')
    assert x is x2 and x.shape == (1, 3, 32, 64) and x.dtype == np.float32
    assert -1 <= x.min() < -0.99 and 0.99 < x.max() <= 1
    monkeypatch.setattr(onnx_export, 'run_onnx', lambda f, x: np.zeros(
        (1, 1, 32, 64), np.int32))
    monkeypatch.setattr(onnx_export, 'run_paddle', lambda d, x: np.ones(
        (1, 1, 32, 64), np.int32))
    with pytest.raises(SegError, match=r'pixel agreement 0\.000% \(limit '
                       r'99\.9%\) on input \[1, 3, 32, 64\]'):
        onnx_export.check_onnx('m.onnx', 'model_dir', [1, 3, 32, 64],
                               'argmax')


def test_check_shape_fills_dynamic_sizes():
    assert onnx_export.check_shape([-1, 3, -1, -1], (64, 96)) == [1, 3, 64,
                                                                   96]
    assert onnx_export.check_shape([2, 3, 32, -1]) == [2, 3, 32, 512]
