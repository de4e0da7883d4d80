"""ResNet-vd backbones: PaddleSeg parameter names, strides, dilation."""

import numpy as np
import paddle
import pytest

from paddleseg.cvlibs import manager
from paddleseg.models.backbones import ResNet_vd
from paddleseg.utils.weights import load_pretrained_model

@pytest.mark.parametrize('backbone, keys', [
    ('ResNet18_vd', 'ccnet_r18_keys.txt'),
    ('ResNet50_vd', 'ccnet_r50_keys.txt'),
    ('ResNet101_vd', 'ccnet_r101_keys.txt'),
])
def test_parameter_names_and_shapes_match_paddleseg(backbone, keys, tmp_path,
                                                    paddleseg_keys):
    prefix = 'backbone.'
    ref = {k[len(prefix):]: v for k, v in paddleseg_keys(keys).items()
           if k.startswith(prefix)}
    model = manager.BACKBONES[backbone](output_stride=8)
    own = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert own == ref
    # A PaddleSeg checkpoint with exactly these names loads with nothing left.
    state = {k: paddle.full(s, 0.5) for k, s in ref.items()}
    paddle.save(state, str(tmp_path / 'bb.pdparams'))
    report = load_pretrained_model(model, str(tmp_path / 'bb.pdparams'))
    assert (report.missing, report.unexpected, report.mismatched) == ([], [], [])
    assert float(model.conv1_1._conv.weight.numpy().mean()) == 0.5


@pytest.mark.parametrize('output_stride, strides', [
    (8, [4, 8, 8, 8]), (16, [4, 8, 16, 16]), (32, [4, 8, 16, 32])])
def test_output_stride(output_stride, strides):
    model = ResNet_vd(18, output_stride=output_stride)
    model.eval()
    feats = model(paddle.zeros([1, 3, 64, 64]))
    assert [64 // f.shape[2] for f in feats] == strides
    assert [f.shape[1] for f in feats] == model.feat_channels == [64, 128, 256,
                                                                  512]


def test_bottleneck_channels_and_multi_grid_dilation():
    model = ResNet_vd(50, output_stride=8, multi_grid=(1, 2, 4))
    assert model.feat_channels == [256, 512, 1024, 2048]
    dilations = [b.conv1._conv._dilation for b in model.stage_list[3]]
    assert [d[0] for d in dilations] == [4, 8, 16]
    assert model.stage_list[2][0].conv1._conv._dilation[0] == 2


@pytest.mark.parametrize('kwargs, message', [
    (dict(layers=19), 'layers must be one of'),
    (dict(layers=18, output_stride=4), 'output_stride must be 8, 16 or 32'),
    (dict(layers=50, multi_grid=(1, 2)), 'multi_grid needs a value'),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ResNet_vd(**kwargs)


def test_vd_shortcut_averages_before_the_1x1_conv():
    model = ResNet_vd(18, output_stride=32)
    short = model.stage_list[1][0].short
    assert short.is_vd_mode and short._conv._stride == [1, 1]
    assert not model.stage_list[0][0].short.is_vd_mode


@pytest.mark.parametrize('eca_name, plain_name', [
    ('ECAResNet50_vd', 'ResNet50_vd'), ('ECAResNet101_vd', 'ResNet101_vd')])
def test_eca_variant_adds_only_the_eca_weights(eca_name, plain_name,
                                               tmp_path):
    eca = manager.BACKBONES[eca_name](output_stride=8)
    plain = manager.BACKBONES[plain_name](output_stride=8)
    own = {k: list(v.shape) for k, v in eca.state_dict().items()}
    ref = {k: list(v.shape) for k, v in plain.state_dict().items()}
    extra = sorted(set(own) - set(ref))
    assert set(ref) <= set(own) and all(own[k] == ref[k] for k in ref)
    blocks = ['bb_{}_{}'.format(s, i) for s, blocks in
              enumerate(eca.stage_list) for i in range(len(blocks))]
    assert extra == sorted(b + '.eca.conv.weight' for b in blocks)
    assert all(own[k] == [1, 1, 3] for k in extra)
    # ImageNet ResNet-vd weights load into the shared parts; only the ECA
    # weights are reported missing.
    paddle.save({k: paddle.full(s, 0.5) for k, s in ref.items()},
                str(tmp_path / 'imagenet.pdparams'))
    report = load_pretrained_model(eca, str(tmp_path / 'imagenet.pdparams'))
    assert (sorted(report.missing), report.unexpected, report.mismatched) == \
        (extra, [], [])
    assert report.loaded == len(ref)


def test_eca_block_scales_the_residual_branch_before_the_addition():
    model = ResNet_vd(18, output_stride=8, eca_k_size=3)
    model.eval()
    block = model.stage_list[1][1]
    x = paddle.randn([1, 128, 8, 8])
    y = block.conv1(block.conv0(x))
    expected = paddle.nn.functional.relu(x + block.eca(y))
    np.testing.assert_allclose(block(x).numpy(), expected.numpy(), rtol=1e-5,
                               atol=1e-6)
    assert not hasattr(ResNet_vd(18).stage_list[1][1], 'eca')
