"""export.py -> deploy/python/infer.py: the exported model labels the same
pixels as predict.py, with oneDNN on and off, with either criss-cross
attention backend; deploy.yaml and loading errors."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest
import yaml
from PIL import Image

from paddleseg.deploy import backends
from paddleseg.deploy.predictor import (DeployConfig, create_predictor,
                                        uses_native_op)
from paddleseg.deploy.export import export_model
from paddleseg.core.predict import get_image_list, predict
from paddleseg.cvlibs import Config, SegBuilder
from paddleseg.utils.errors import SegError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
sys.path.insert(0, os.path.join(ROOT, 'tools'))

from make_demo_data import make_demo_data  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    'deploy_infer_script', os.path.join(ROOT, 'deploy', 'python', 'infer.py'))
infer_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(infer_script)

# val transforms of the configs the tests export, by name
TRANSFORMS = {
    'normalize': '[{type: Normalize}]',
    # infer.py must bring the output back to the image size as predict.py
    'resize': '[{type: Resize, target_size: [96, 48]}, {type: Normalize}]',
}


@pytest.fixture(scope='module')
def setup(tmp_path_factory, write_model_config, as_if_trained):
    """The demo data, one CCNet's weights, and its config with each of
    TRANSFORMS (``<name>.yml``)."""
    base = tmp_path_factory.mktemp('export')
    make_demo_data(str(base / 'data'), num_train=1, num_val=2, width=128,
                   height=64)
    for name, transforms in TRANSFORMS.items():
        write_model_config(base / (name + '.yml'), base / 'data', transforms)
    paddle.seed(0)
    model = SegBuilder(Config(str(base / 'normalize.yml'))).model
    as_if_trained(model)
    paddle.save(model.state_dict(), str(base / 'model.pdparams'))
    return base


def _build(base, name='normalize'):
    """Builder, model with the saved weights, and transform configs."""
    cfg = Config(str(base / (name + '.yml')))
    builder = SegBuilder(cfg)
    model = builder.model
    model.set_state_dict(paddle.load(str(base / 'model.pdparams')))
    model.eval()
    return builder, model, cfg.val_dataset_cfg['transforms']


def _labels(folder):
    """{relative name: palette-index array} of the PNGs under folder."""
    root = os.path.join(folder, 'pseudo_color_prediction')
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            path = os.path.join(dirpath, f)
            out[os.path.relpath(path, root)] = np.array(Image.open(path))
    return out


def _agreement(a, b):
    assert sorted(a) == sorted(b) and a
    same = sum(int((a[k] == b[k]).sum()) for k in a)
    return same / sum(a[k].size for k in a)


def _predict(base, builder, model, out):
    images, image_dir = get_image_list(str(base / 'data' / 'leftImg8bit' /
                                           'val'))
    predict(model, builder.val_transforms, images, image_dir=image_dir,
            save_dir=str(out), palette=builder.palette)
    return _labels(str(out))


def _infer(base, export_dir, out, *flags):
    infer_script.main(['--config', str(export_dir / 'deploy.yaml'),
                       '--image_path', str(base / 'data' / 'leftImg8bit' /
                                           'val'),
                       '--save_dir', str(out), '--cpu_threads', '2', *flags])
    return _labels(str(out))


def test_export_writes_paddleseg_deploy_yaml(setup, tmp_path):
    builder, model, transforms = _build(setup)
    paths = export_model(model, str(tmp_path), transforms,
                         input_shape=[1, 3, -1, -1], output_op='softmax',
                         cca_backend='reference', palette=builder.palette)
    assert sorted(os.listdir(tmp_path)) == ['deploy.yaml', 'model.json',
                                            'model.pdiparams']
    deploy = yaml.safe_load(open(paths['deploy']))['Deploy']
    assert deploy['model'] == 'model.json'
    assert deploy['params'] == 'model.pdiparams'
    assert deploy['transforms'] == [{'type': 'Normalize'}]
    assert deploy['input_shape'] == [1, 3, -1, -1]
    assert (deploy['output_op'], deploy['output_dtype']) == ('softmax',
                                                             'float32')
    assert deploy['palette'][0] == list(builder.palette[0])
    assert not uses_native_op(paths['model'])


@pytest.mark.parametrize('output_op', ['argmax', 'none'])
def test_infer_equals_predict_with_and_without_onednn(setup, tmp_path,
                                                      output_op):
    builder, model, transforms = _build(setup)
    expected = _predict(setup, builder, model, tmp_path / 'predict')
    export_model(model, str(tmp_path / 'model'), transforms,
                 output_op=output_op, cca_backend='reference',
                 palette=builder.palette)
    for onednn in ('True', 'False'):
        got = _infer(setup, tmp_path / 'model', tmp_path / onednn,
                     '--enable_mkldnn', onednn)
        assert _agreement(got, expected) >= 0.999, onednn


def test_infer_maps_resized_inputs_back(setup, tmp_path):
    # A Resize in the transforms: infer.py brings the output back to the
    # image size as predict.py does.
    builder, model, transforms = _build(setup, 'resize')
    expected = _predict(setup, builder, model, tmp_path / 'predict')
    export_model(model, str(tmp_path / 'model'), transforms,
                 output_op='none', cca_backend='reference')
    got = _infer(setup, tmp_path / 'model', tmp_path / 'infer')
    assert all(v.shape == (64, 128) for v in got.values())
    assert _agreement(got, expected) >= 0.999


def test_native_operator_model_loads_its_library_in_a_fresh_process(
        setup, tmp_path, native_op):
    builder, model, transforms = _build(setup)
    expected = _predict(setup, builder, model, tmp_path / 'predict')
    paths = export_model(model, str(tmp_path / 'model'), transforms,
                         cca_backend='native')
    assert uses_native_op(paths['model'])
    # A process that never imported paddleseg.ops: infer.py loads it.
    for onednn in ('True', 'False'):
        out = tmp_path / ('infer' + onednn)
        run = subprocess.run(
            [sys.executable, os.path.join(ROOT, 'deploy', 'python',
                                          'infer.py'),
             '--config', paths['deploy'], '--image_path',
             str(setup / 'data' / 'leftImg8bit' / 'val'), '--save_dir',
             str(out), '--enable_mkldnn', onednn],
            capture_output=True, text=True, cwd=str(tmp_path))
        assert run.returncode == 0, run.stderr[-2000:]
        assert _agreement(_labels(str(out)), expected) >= 0.999
    # Plain Paddle Inference without the library: an error, not a crash.
    plain = subprocess.run([sys.executable, '-c', (
        'from paddle import inference as i; c = i.Config({!r}, {!r}); '
        'i.create_predictor(c)').format(paths['model'], paths['params'])],
        capture_output=True, text=True)
    assert plain.returncode > 0, 'expected an exception, got {}'.format(
        plain.returncode)


def test_deploy_config_errors_and_legacy_model_name(setup, tmp_path):
    builder, model, transforms = _build(setup)
    with pytest.raises(SegError, match='does not exist'):
        DeployConfig(str(tmp_path / 'nowhere' / 'deploy.yaml'))
    paths = export_model(model, str(tmp_path), transforms)
    deploy = yaml.safe_load(open(paths['deploy']))
    # PaddleSeg 2.x wrote `model: model.pdmodel`; a folder exported by Paddle
    # 3 holds model.json instead, which is what gets loaded.
    deploy['Deploy']['model'] = 'model.pdmodel'
    yaml.safe_dump(deploy, open(paths['deploy'], 'w'))
    assert DeployConfig(str(tmp_path)).model_file == paths['model']
    (tmp_path / 'deploy.yaml').write_text('Deploy: [unclosed')
    with pytest.raises(SegError, match='not valid YAML'):
        DeployConfig(str(tmp_path))
    (tmp_path / 'deploy.yaml').write_text('Other: {}')
    with pytest.raises(SegError, match='no `Deploy` section'):
        DeployConfig(str(tmp_path))
    yaml.safe_dump(deploy, open(paths['deploy'], 'w'))
    with pytest.raises(SegError, match='--precision fp16 needs --device gpu'):
        create_predictor(DeployConfig(str(tmp_path)), precision='fp16')
    os.remove(paths['params'])
    with pytest.raises(SegError, match='model.pdiparams.*does not exist'):
        DeployConfig(str(tmp_path))


@pytest.mark.parametrize('shape', [[1, 3, 64], [1, 3, 0, 64], [1, 3, -2, 8]])
def test_export_rejects_bad_input_shape(setup, tmp_path, shape):
    _, model, transforms = _build(setup)
    with pytest.raises(SegError, match='--input_shape'):
        export_model(model, str(tmp_path), transforms, input_shape=shape)
    assert not os.listdir(tmp_path)


LEGACY_EXPORT = """
import paddle
class Conv(paddle.nn.Layer):
    def __init__(self):
        super().__init__()
        self.conv = paddle.nn.Conv2D(3, 19, 1)
    def forward(self, x):
        return self.conv(x)
paddle.seed(0)
layer = Conv()
layer.eval()
spec = [paddle.static.InputSpec([None, 3, None, None], 'float32', 'x')]
paddle.jit.save(paddle.jit.to_static(layer, input_spec=spec,
                                     full_graph=True), {!r})
"""


def test_legacy_pdmodel_export_runs(setup, tmp_path):
    # A model exported the pre-PIR way (PaddleSeg 2.x: model.pdmodel) still
    # runs: deploy.yaml names it and infer.py loads it.
    script = tmp_path / 'legacy_export.py'  # dy2static needs a source file
    script.write_text(LEGACY_EXPORT.format(str(tmp_path / 'model')))
    subprocess.run([sys.executable, str(script)], check=True,
                   capture_output=True,
                   env=dict(os.environ, FLAGS_enable_pir_api='0'))
    assert (tmp_path / 'model.pdmodel').is_file()
    yaml.safe_dump({'Deploy': {
        'model': 'model.pdmodel', 'params': 'model.pdiparams',
        'transforms': [{'type': 'Normalize'}], 'output_op': 'none',
        'input_shape': [-1, 3, -1, -1], 'output_dtype': 'float32'}},
        open(tmp_path / 'deploy.yaml', 'w'))
    assert DeployConfig(str(tmp_path)).model_file.endswith('model.pdmodel')
    labels = _infer(setup, tmp_path, tmp_path / 'out')
    assert len(labels) == 2 and all(v.shape == (64, 128)
                                    for v in labels.values())


def test_export_for_fastdeploy_names_and_infer_reads_the_folder(setup,
                                                                 tmp_path):
    # export.py --for_fd: inference.json/.pdiparams/.yml as FastDeploy and
    # PaddleX read them; the labels are the plain export's.
    _, model, transforms = _build(setup)
    plain = export_model(model, str(tmp_path / 'plain'), transforms,
                         cca_backend='reference')
    paths = export_model(model, str(tmp_path / 'fd'), transforms,
                         cca_backend='reference', for_fd=True)
    assert sorted(os.listdir(tmp_path / 'fd')) == [
        'inference.json', 'inference.pdiparams', 'inference.yml']
    deploy = DeployConfig(str(tmp_path / 'fd'))
    assert (deploy.model_file, deploy.params_file) == (paths['model'],
                                                       paths['params'])
    # PaddleSeg's own --for_fd names inference.pdmodel in inference.yml even
    # where Paddle 3 wrote inference.json: the .json beside it is loaded.
    dic = yaml.safe_load(open(paths['deploy']))
    assert dic['Deploy']['model'] == 'inference.json'
    dic['Deploy']['model'] = 'inference.pdmodel'
    yaml.safe_dump(dic, open(paths['deploy'], 'w'))
    assert DeployConfig(paths['deploy']).model_file == paths['model']
    images = str(setup / 'data' / 'leftImg8bit' / 'val')
    for name, config in (('plain', os.path.dirname(plain['deploy'])),
                         ('fd', str(tmp_path / 'fd'))):
        infer_script.main(['--config', config, '--image_path', images,
                           '--save_dir', str(tmp_path / ('out_' + name)),
                           '--cpu_threads', '2'])
    a, b = _labels(str(tmp_path / 'out_plain')), _labels(str(tmp_path /
                                                             'out_fd'))
    assert a.keys() == b.keys() and len(a) == 2
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


# ------------------------------------------------- runtimes (--backend)

def _export(setup, folder, output_op='argmax'):
    builder, model, transforms = _build(setup)
    export_model(model, str(folder), transforms, output_op=output_op,
                 cca_backend='reference', palette=builder.palette)
    return builder, model


@pytest.fixture(scope='module')
def onnx_export(setup, tmp_path_factory):
    """One argmax export and its model.onnx (converted once: paddle2onnx
    takes most of a minute here), with predict.py's labels."""
    pytest.importorskip('paddle2onnx')
    folder = tmp_path_factory.mktemp('onnx_export')
    builder, model = _export(setup, folder / 'model')
    expected = _predict(setup, builder, model, folder / 'predict')
    backends.onnx_file_for(DeployConfig(str(folder / 'model')))
    return folder / 'model', expected


@pytest.mark.parametrize('backend', ['onnxruntime', 'openvino'])
def test_every_backend_labels_the_pixels_predict_labels(setup, onnx_export,
                                                        tmp_path, backend):
    pytest.importorskip(backend)
    model_dir, expected = onnx_export
    made = os.path.getmtime(model_dir / backends.ONNX_FILE)
    got = _infer(setup, model_dir, tmp_path, '--backend', backend)
    assert _agreement(got, expected) >= 0.999
    assert os.path.getmtime(model_dir / backends.ONNX_FILE) == made  # reused


def test_a_stale_onnx_file_is_converted_again(setup, tmp_path, monkeypatch):
    from paddleseg.deploy import onnx
    calls = []
    monkeypatch.setattr(onnx, 'convert_to_onnx',
                        lambda *args, **kwargs: calls.append(args))
    _export(setup, tmp_path)
    (tmp_path / backends.ONNX_FILE).write_text('older than the model')
    os.utime(tmp_path / backends.ONNX_FILE, (1, 1))
    path = backends.onnx_file_for(DeployConfig(str(tmp_path)))
    assert calls == [(str(tmp_path), path)]
    os.utime(path)  # newer than the model now: reused
    backends.onnx_file_for(DeployConfig(str(tmp_path)))
    assert len(calls) == 1


def test_benchmark_table_and_auto(setup, onnx_export, tmp_path, capsys):
    pytest.importorskip('onnxruntime')
    model_dir, expected = onnx_export
    _infer(setup, model_dir, tmp_path / 'a', '--benchmark')
    out = capsys.readouterr().out
    cases = backends.available_cases()
    assert ('onnxruntime', 'fp32') in cases
    for backend, precision in cases:
        assert any(backend in line and precision in line and '%' in line
                   for line in out.splitlines()), (backend, precision, out)
    assert 'Runtimes on 2 image(s)' in out and '100.00%' in out
    got = _infer(setup, model_dir, tmp_path / 'b', '--backend', 'auto')
    assert _agreement(got, expected) >= 0.995


def test_pick_fastest_needs_agreement():
    rows = [dict(backend='paddle', precision='fp32', ms=10.0, agreement=1.0),
            dict(backend='openvino', precision='bf16', ms=4.0,
                 agreement=0.99),
            dict(backend='onnxruntime', precision='fp32', ms=8.0,
                 agreement=0.9995),
            dict(backend='openvino', precision='fp32', error='x')]
    assert backends.pick_fastest(rows)['backend'] == 'onnxruntime'
    assert backends.pick_fastest(rows, limit=0.98)['precision'] == 'bf16'


def test_agreement_counts_pixels_of_every_output_form(monkeypatch):
    """(N, 1, H, W) class ids (the argmax export), (N, H, W) ids and
    (N, K, H, W) scores: a quarter of the pixels differ in each."""
    ids = np.zeros((1, 1, 2, 2), 'int32')
    other = ids.copy()
    other[0, 0, 0, 0] = 3
    scores = np.zeros((1, 4, 2, 2), 'float32')
    scores[0, 0] = 1
    flipped = scores.copy()
    flipped[0, 2, 1, 1] = 2
    for ref, out in [(ids, other), (ids[:, 0], other[:, 0]),
                     (scores, flipped)]:
        runs = {'paddle': lambda batch, ref=ref: ref,
                'onnxruntime': lambda batch, out=out: out}
        monkeypatch.setattr(backends, 'create_runner',
                            lambda deploy, backend, *a, **k: runs[backend])
        rows = backends.compare_backends(
            None, [np.zeros((1, 3, 2, 2), 'float32')],
            [('paddle', 'fp32'), ('onnxruntime', 'fp32')], repeat=1)
        assert [r['agreement'] for r in rows] == [1.0, 0.75]


def test_cpu_flags_decide_bf16(tmp_path, monkeypatch):
    info = tmp_path / 'cpuinfo'
    info.write_text('processor\t: 0\nflags\t\t: fpu avx2 avx512f\n')
    assert not backends.cpu_has_bf16(str(info))
    info.write_text('processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n')
    assert backends.cpu_has_bf16(str(info))
    assert not backends.cpu_has_bf16(str(tmp_path / 'missing'))
    monkeypatch.setattr(backends, 'cpu_has_bf16', lambda: False)
    assert ('paddle', 'bf16') not in backends.available_cases()
    with pytest.raises(SegError, match='neither AVX512-BF16 nor AMX'):
        backends.check_backend('paddle', 'bf16')


@pytest.mark.parametrize('backend, precision, device, message', [
    ('tensorflow', 'fp32', 'cpu', 'must be one of paddle, onnxruntime, '
     'openvino or auto'),
    ('onnxruntime', 'bf16', 'cpu', 'onnxruntime has no bf16'),
    ('onnxruntime', 'fp16', 'cpu', 'runs fp32 or bf16, not fp16'),
    ('onnxruntime', 'fp32', 'gpu', 'runs on the CPU here'),
    ('paddle', 'bf16', 'gpu', 'bf16 is for the CPU'),
])
def test_backend_and_precision_errors(backend, precision, device, message):
    pytest.importorskip('onnxruntime')
    with pytest.raises(SegError, match=message):
        backends.check_backend(backend, precision, device)


def test_missing_runtime_and_native_operator_are_clear(setup, tmp_path,
                                                       monkeypatch):
    monkeypatch.setattr(backends, '_installed', lambda name: name == 'paddle')
    with pytest.raises(SegError, match='needs the openvino package.*pip '
                       'install openvino'):
        backends.check_backend('openvino', 'fp32')
    monkeypatch.undo()
    _export(setup, tmp_path)
    monkeypatch.setattr(backends, 'uses_native_op', lambda path: True)
    with pytest.raises(SegError, match='no ONNX form; re-export with '
                       '--cca_backend reference'):
        backends.onnx_file_for(DeployConfig(str(tmp_path)))


def test_bf16_on_cpu_needs_onednn(setup, tmp_path):
    _export(setup, tmp_path)
    with pytest.raises(SegError, match='bf16 on CPU runs in oneDNN'):
        create_predictor(DeployConfig(str(tmp_path)), precision='bf16',
                         enable_mkldnn=False)


@pytest.mark.skipif(not backends.cpu_has_bf16(),
                    reason='this CPU has no AVX512-BF16 or AMX')
def test_bf16_labels_nearly_as_fp32(setup, tmp_path):
    _export(setup, tmp_path / 'model')
    fp32 = _infer(setup, tmp_path / 'model', tmp_path / 'a')
    bf16 = _infer(setup, tmp_path / 'model', tmp_path / 'b', '--precision',
                  'bf16')
    # 98.76% on a Xeon with AMX: this model's weights are not trained, so
    # many pixels are near-ties that bf16 flips (the trained demo models'
    # figures are in benchmarks/results/xeon_amx/inference_backends.md); a
    # broken bf16 path would agree on about one pixel in 19.
    assert _agreement(bf16, fp32) >= 0.98
