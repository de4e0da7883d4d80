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
