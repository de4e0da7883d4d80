"""The model contract (``paddleseg/models/__init__.py``), on every registered
model: it builds, trains a step on a tiny input whose labels include the
ignore index (every parameter gets a finite gradient), returns its outputs at
the input size, exports to a static program without the operators that
break Paddle Inference's oneDNN path, runs there (oneDNN on and off) with the
eager model's logits and labels, and converts to ONNX with the same labels.

A new model cannot land without a tiny instance in ``TINY``.
"""

import importlib.util
import json
import os

import numpy as np
import paddle
import pytest

from paddleseg.cvlibs import manager
from paddleseg.deploy.export import export_model
from paddleseg.deploy.predictor import DeployConfig, create_predictor
from paddleseg.models.backbones import HRNet, ResNet_vd
from paddleseg.models.losses import CrossEntropyLoss


def _tiny_acfnet(backbone, acf_style):
    return manager.MODELS['ACFNet'](
        num_classes=3, backbone=backbone, aspp_ratios=[1, 2, 3],
        aspp_channels=8, coarse_channels=8, acf_channels=8, fine_channels=8,
        aux_channels=8, acf_style=acf_style)


def _tiny_mscale_ocrnet(mscale):
    # One module per stage (fewer resizes to trace; each scale repeats them).
    return manager.MODELS['MscaleOCRNet'](
        num_classes=3, backbone=HRNet(
            stage1_num_blocks=[1], stage1_num_channels=[8],
            stage2_num_blocks=[1, 1], stage2_num_channels=[4, 8],
            stage3_num_modules=1, stage3_num_blocks=[1, 1, 1],
            stage3_num_channels=[4, 8, 16], stage4_num_modules=1,
            stage4_num_blocks=[1, 1, 1, 1],
            stage4_num_channels=[4, 8, 16, 32]), mscale=mscale,
        ocr_mid_channels=16, ocr_key_channels=8, attention_channels=8)


# A tiny instance of each registered model; a new model must add one here.
# A key ``Model-variant`` is a further instance of ``Model`` (another
# backbone or option whose operators the export checks must see too).
TINY = {
    'ACFNet': lambda: _tiny_acfnet(
        manager.BACKBONES['ResNet18_vd'](output_stride=8), 'paper'),
    # ECA blocks (adaptive pooling, Conv1D) and the port's channel softmax.
    'ACFNet[eca-reference]': lambda: _tiny_acfnet(
        ResNet_vd(18, output_stride=8, eca_k_size=3), 'reference'),
    'FCN': lambda: manager.MODELS['FCN'](
        num_classes=3, backbone=manager.BACKBONES['ResNet18_vd'](
            output_stride=8), backbone_indices=[-1], channels=16),
    'CCNet': lambda: manager.MODELS['CCNet'](
        num_classes=3, backbone=manager.BACKBONES['ResNet18_vd'](
            output_stride=8), recurrence=2, dropout_prob=0.1),
    # OCRNet on a tiny HRNet (every stage; padding_same=True, PaddleSeg's
    # default: 'same' convs), and on one with the polarized self-attention
    # and padding_same=False (converted weights' setting).
    'OCRNet': lambda: manager.MODELS['OCRNet'](
        num_classes=3, backbone=HRNet(
            stage1_num_blocks=[1], stage1_num_channels=[8],
            stage2_num_blocks=[1, 1], stage2_num_channels=[4, 8],
            stage3_num_modules=2, stage3_num_blocks=[1, 1, 1],
            stage3_num_channels=[4, 8, 16], stage4_num_modules=1,
            stage4_num_blocks=[1, 1, 1, 1],
            stage4_num_channels=[4, 8, 16, 32]), backbone_indices=[0],
        ocr_mid_channels=16, ocr_key_channels=8),
    # MscaleOCRNet on a tiny HRNet: PaddleSeg's default scales, and a list
    # without 1.0 (the combined prediction is resized to the input).
    'MscaleOCRNet': lambda: _tiny_mscale_ocrnet([0.5, 1.0, 2.0]),
    'MscaleOCRNet[no-1.0]': lambda: _tiny_mscale_ocrnet([0.75, 1.5]),
    'OCRNet[psa]': lambda: manager.MODELS['OCRNet'](
        num_classes=3, backbone=HRNet(
            stage1_num_blocks=[1], stage1_num_channels=[8],
            stage2_num_blocks=[1, 1], stage2_num_channels=[4, 8],
            stage3_num_modules=1, stage3_num_blocks=[1, 1, 1],
            stage3_num_channels=[4, 8, 16], stage4_num_modules=1,
            stage4_num_blocks=[1, 1, 1, 1], stage4_num_channels=[4, 8, 16, 32],
            use_psa=True, padding_same=False), backbone_indices=[0],
        ocr_mid_channels=16, ocr_key_channels=8),
}
# Cases whose program holds the same operators as another case's, so its
# ONNX conversion (minutes for a multi-scale model: 147 s for the
# three-scale list on 2 shared cores) shows nothing new. The two-scale list
# without 1.0 is converted: it holds every operator of the three-scale one
# (resizes by a factor, the attention products and sums) plus the final
# resize to the input size, at two thirds of the work.
ONNX_COVERED_BY = {'MscaleOCRNet': 'MscaleOCRNet[no-1.0]'}
# Operators a static program must not hold (see the model contract):
# oneDNN fails on bilinear_interp at start-up, segfaults on leaky_relu
# after conv + batch norm and on einsum; paddle2onnx aborts on diag.
FORBIDDEN_OPS = ('bilinear_interp', 'leaky_relu', 'einsum', 'diag')
# Input of the export checks: H != W, neither a multiple of 32.
SIZE = (72, 104)
HAS_ONNX = all(importlib.util.find_spec(m) is not None
               for m in ('paddle2onnx', 'onnxruntime'))


def test_every_registered_model_has_a_smoke_case():
    # A model may have more cases than one: 'Name' and 'Name[variant]'.
    assert sorted(manager.MODELS.components_dict) == sorted(
        {case.split('[')[0] for case in TINY})


@pytest.mark.parametrize('name', sorted(TINY))
def test_forward_backward_every_parameter_gets_a_gradient(name):
    paddle.seed(0)
    model = TINY[name]()
    model.train()
    x = paddle.randn([2, 3, 40, 56])
    label = np.random.RandomState(0).randint(0, 3, (2, 40, 56))
    label[:, :5] = 255
    label = paddle.to_tensor(label)
    logits = model(x)
    assert isinstance(logits, list) and logits
    assert all(tuple(l.shape) == (2, 3, 40, 56) for l in logits)
    loss = paddle.add_n([CrossEntropyLoss()(l, label) for l in logits])
    assert np.isfinite(loss.item())
    loss.backward()
    for pname, p in model.named_parameters():
        if p.stop_gradient:
            continue
        assert p.grad is not None, pname
        assert np.isfinite(p.grad.numpy()).all(), pname
    model.eval()
    with paddle.no_grad():
        out = model(x)
    assert isinstance(out, list) and len(out) == 1  # main logits only
    assert tuple(out[0].shape) == (2, 3, 40, 56)
    assert np.isfinite(out[0].numpy()).all()


def program_ops(model_json):
    """The operator names of an exported PIR program (``model.json``),
    without their dialect prefix (``1.conv2d`` -> ``conv2d``)."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for op in node.get('ops', []) or []:
                if isinstance(op, dict) and isinstance(op.get('#'), str):
                    found.add(op['#'].split('.', 1)[-1])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    with open(model_json) as f:
        walk(json.load(f))
    return found


def _agreement(a, b):
    return float(np.mean(a.argmax(1) == b.argmax(1)))


def _relative_error(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope='module', params=sorted(TINY))
def exported(request, tmp_path_factory, as_if_trained):
    """(name, export folder, input, eager logits) of each tiny model."""
    name = request.param
    paddle.seed(0)
    model = as_if_trained(TINY[name]())
    model.eval()
    x = np.random.RandomState(1).uniform(-1, 1, (1, 3) + SIZE).astype(
        'float32')
    with paddle.no_grad():
        eager = model(paddle.to_tensor(x))[0].numpy()
    folder = tmp_path_factory.mktemp('contract_' + name)
    export_model(model, str(folder), [{'type': 'Normalize'}],
                 input_shape=[-1, 3, -1, -1], output_op='none')
    return name, folder, x, eager


def test_exported_program_avoids_the_operators_onednn_breaks_on(exported):
    name, folder, _, _ = exported
    ops = program_ops(str(folder / 'model.json'))
    assert 'conv2d' in ops  # the walk sees the program
    bad = sorted(op for op in ops if op.rstrip('_') in FORBIDDEN_OPS)
    assert not bad, '{} exports {}: use paddleseg.models.layers'.format(
        name, bad)


@pytest.mark.parametrize('onednn', [True, False])
def test_paddle_inference_gives_the_eager_logits(exported, onednn):
    name, folder, x, eager = exported
    predictor = create_predictor(DeployConfig(str(folder)), cpu_threads=1,
                                 enable_mkldnn=onednn)
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    handle.reshape(list(x.shape))
    handle.copy_from_cpu(x)
    predictor.run()
    out = predictor.get_output_handle(
        predictor.get_output_names()[0]).copy_to_cpu()
    assert out.shape == eager.shape == (1, 3) + SIZE
    assert _agreement(out, eager) >= 0.999, name
    assert _relative_error(out, eager) < 1e-3, name


@pytest.mark.skipif(not HAS_ONNX, reason='paddle2onnx/onnxruntime missing')
def test_onnx_conversion_gives_the_same_labels(exported):
    from paddleseg.deploy.onnx import convert_to_onnx, run_onnx
    name, folder, x, eager = exported
    if name in ONNX_COVERED_BY:
        pytest.skip('same operators as {}, converted there'.format(
            ONNX_COVERED_BY[name]))
    onnx_file = str(folder / 'model.onnx')
    convert_to_onnx(str(folder), onnx_file, name=name)
    out = run_onnx(onnx_file, x)
    assert out.shape == eager.shape
    assert _agreement(out, eager) >= 0.999, name
    assert _relative_error(out, eager) < 1e-3, name
