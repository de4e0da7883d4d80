"""HRNet backbones: PaddleSeg's names and shapes, every variant's channels,
the factories' signatures, the padding flag, initialisation, weights loading,
squeeze-and-excitation and polarized self-attention."""

import inspect

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from paddleseg.cvlibs import manager
from paddleseg.cvlibs.config_checker import check_component
from paddleseg.models.backbones import HRNet
from paddleseg.models.layers import PolarizedSelfAttentionModule
from paddleseg.utils.errors import ConfigError
from paddleseg.utils.weights import load_pretrained_model

VARIANTS = {'HRNet_W18_Small_V1': 240, 'HRNet_W18_Small_V2': 270,
            'HRNet_W18': 270, 'HRNet_W30': 450, 'HRNet_W32': 480,
            'HRNet_W40': 600, 'HRNet_W44': 660, 'HRNet_W48': 720,
            'HRNet_W60': 900, 'HRNet_W64': 960}
FACTORY_ARGS = ['in_channels', 'pretrained', 'has_se', 'align_corners',
                'padding_same', 'use_psa', 'conv_init']


def tiny_hrnet(**kwargs):
    """An HRNet small enough for value checks: every stage, two modules in
    stage 3 (module-to-module fusion), transitions that change channels."""
    return HRNet(stage1_num_blocks=[1], stage1_num_channels=[8],
                 stage2_num_blocks=[1, 1], stage2_num_channels=[4, 8],
                 stage3_num_modules=2, stage3_num_blocks=[1, 1, 1],
                 stage3_num_channels=[4, 8, 16], stage4_num_modules=1,
                 stage4_num_blocks=[1, 1, 1, 1],
                 stage4_num_channels=[4, 8, 16, 32], **kwargs)


def shapes(layer):
    return {k: list(v.shape) for k, v in layer.state_dict().items()}


@pytest.mark.parametrize('backbone, keys', [
    ('HRNet_W18', 'ocrnet_hrnetw18_keys.txt'),
    ('HRNet_W48', 'ocrnet_hrnetw48_keys.txt'),
    ('HRNet_W48', 'mscaleocrnet_hrnetw48_keys.txt'),
])
def test_parameter_names_and_shapes_match_paddleseg(backbone, keys,
                                                    paddleseg_keys):
    prefix = 'backbone.'
    ref = {k[len(prefix):]: v for k, v in paddleseg_keys(keys).items()
           if k.startswith(prefix)}
    with paddle.LazyGuard():  # shapes only: no initialisation
        model = manager.BACKBONES[backbone]()
    assert shapes(model) == ref


@pytest.mark.parametrize('name', sorted(VARIANTS))
def test_every_variant_feat_channels_and_signature(name):
    factory = manager.BACKBONES[name]
    assert list(inspect.signature(factory).parameters) == FACTORY_ARGS
    with paddle.LazyGuard():
        model = factory()
    assert model.feat_channels == [VARIANTS[name]]
    # The four branches that are concatenated add up to feat_channels.
    widths = [shapes(model)['st4.stage_st4_1.branches_func.bb_st4_1_branch_'
                            'layer_{}_1.conv1._conv.weight'.format(b)][0]
              for b in (1, 2, 3, 4)]
    assert sum(widths) == VARIANTS[name]


def test_forward_is_one_concatenated_map_at_a_quarter():
    model = manager.BACKBONES['HRNet_W18_Small_V1']()
    model.eval()
    with paddle.no_grad():
        feats = model(paddle.randn([2, 3, 61, 90]))
    assert isinstance(feats, list) and len(feats) == 1
    assert tuple(feats[0].shape) == (2, 240, 16, 23)  # ceil(/2) twice


def test_config_checker_reads_the_factory_arguments():
    cfg = {'type': 'HRNet_W18', 'padding_sam': False}
    with pytest.raises(ConfigError, match="Did you mean 'padding_same'"):
        check_component(cfg, 'model.backbone', 'x.yml', manager.BACKBONES)
    check_component({'type': 'HRNet_W18', 'padding_same': False,
                     'align_corners': True}, 'model.backbone', 'x.yml',
                    manager.BACKBONES)


def _stem_conv(padding_same):
    paddle.seed(0)
    return tiny_hrnet(padding_same=padding_same).conv_layer1_1._conv


@pytest.mark.parametrize('size', [(16, 20), (15, 21)])
def test_padding_same_pads_stride2_convs_the_tf_way(size):
    x = paddle.randn([1, 3, *size])
    same, one = _stem_conv(True), _stem_conv(False)
    np.testing.assert_allclose(same.weight.numpy(), one.weight.numpy())
    # 'same' at stride 2 pads to ceil(size / 2) outputs, the smaller half
    # first (TF convention): (0, 1) on even sizes, (1, 1) on odd ones.
    pads = []
    for s in reversed(size):  # F.pad takes the last axis first
        total = max((-(-s // 2) - 1) * 2 + 3 - s, 0)
        pads += [total // 2, total - total // 2]
    expected = F.conv2d(F.pad(x, pads), same.weight, stride=2)
    np.testing.assert_allclose(same(x).numpy(), expected.numpy(), rtol=1e-5,
                               atol=1e-6)
    symmetric = F.conv2d(x, one.weight, stride=2, padding=1)
    np.testing.assert_allclose(one(x).numpy(), symmetric.numpy(), rtol=1e-5,
                               atol=1e-6)
    if size[0] % 2 and size[1] % 2:
        np.testing.assert_allclose(same(x).numpy(), one(x).numpy(),
                                   rtol=1e-5, atol=1e-6)
    else:
        assert not np.allclose(same(x).numpy(), one(x).numpy(), atol=1e-5)


def test_initialisation_is_paddleseg():
    paddle.seed(0)
    model = tiny_hrnet(use_psa=True)
    convs = [l for l in model.sublayers() if isinstance(l, paddle.nn.Conv2D)]
    weights = np.concatenate([c.weight.numpy().ravel() for c in convs])
    assert abs(weights.std() - 0.001) < 1e-4 and abs(weights.mean()) < 1e-4
    # The attention's convs too (PaddleSeg re-initialises every conv).
    psa = model.stages[0].hr_modules[0].branches_func.branches[0][0].deattn
    assert psa.conv_up.weight.numpy().std() < 0.01
    bns = [l for l in model.sublayers()
           if isinstance(l, paddle.nn.BatchNorm2D)]
    assert all((b.weight.numpy() == 1).all() and (b.bias.numpy() == 0).all()
               for b in bns)


def test_kaiming_initialisation_for_training_from_scratch():
    paddle.seed(0)
    model = tiny_hrnet(conv_init='kaiming')
    for conv in [l for l in model.sublayers()
                 if isinstance(l, paddle.nn.Conv2D)]:
        w = conv.weight.numpy()
        if w.size < 500:  # too few values for a std
            continue
        fan_in = w[0].size
        assert abs(w.std() / np.sqrt(2.0 / fan_in) - 1) < 0.15, conv
    with pytest.raises(ValueError, match="conv_init must be 'normal'.*"
                       "got 'xavier'"):
        tiny_hrnet(conv_init='xavier')


def test_pretrained_loads_the_backbone_weights(tmp_path):
    paddle.seed(1)
    source = manager.BACKBONES['HRNet_W18_Small_V1']()
    state = {k: v + 0.5 for k, v in source.state_dict().items()}
    path = str(tmp_path / 'hrnet.pdparams')
    paddle.save(state, path)
    model = manager.BACKBONES['HRNet_W18_Small_V1'](pretrained=path)
    for k, v in model.state_dict().items():
        np.testing.assert_allclose(v.numpy(), state[k].numpy(), err_msg=k)
    report = load_pretrained_model(model, path)
    assert (report.missing, report.unexpected, report.mismatched) == \
        ([], [], [])


def test_has_se_adds_squeeze_excitation_to_every_block():
    plain, se = shapes(manager.BACKBONES['HRNet_W18_Small_V2']()), shapes(
        manager.BACKBONES['HRNet_W18_Small_V2'](has_se=True))
    added = set(se) - set(plain)
    assert set(plain) <= set(se)
    blocks = {k.rsplit('.se.', 1)[0] for k in added}
    # 2 bottlenecks, then 2 blocks per branch: 2 x 2 + 3 x 3 x 2 + 2 x 4 x 2.
    assert len(blocks) == 2 + 4 + 18 + 16
    assert {k.split('.se.', 1)[1] for k in added} == {
        'squeeze.weight', 'squeeze.bias', 'excitation.weight',
        'excitation.bias'}
    assert se['la1.bb_layer2_1.se.squeeze.weight'] == [256, 16]
    assert se['st2.stage_st2_1.branches_func.bb_st2_1_branch_layer_2_1.se.'
              'excitation.weight'] == [2, 36]


def test_use_psa_adds_exactly_the_deattn_keys():
    plain = shapes(manager.BACKBONES['HRNet_W18_Small_V1']())
    psa = shapes(manager.BACKBONES['HRNet_W18_Small_V1'](use_psa=True))
    added = set(psa) - set(plain)
    assert set(plain) <= set(psa)
    names = {'conv_q_right', 'conv_v_right', 'conv_up', 'conv_q_left',
             'conv_v_left'}
    assert {k.split('.deattn.')[1] for k in added} == {
        n + '.weight' for n in names}  # bias-free
    # One attention module per basic block: 2 + 3 + 4 branches x 2 blocks.
    assert len({k.split('.deattn.')[0] for k in added}) == 18
    prefix = ('st4.stage_st4_1.branches_func.bb_st4_1_branch_layer_4_2.'
              'deattn.')
    assert psa[prefix + 'conv_q_right.weight'] == [1, 128, 1, 1]
    assert psa[prefix + 'conv_v_right.weight'] == [64, 128, 1, 1]
    assert psa[prefix + 'conv_up.weight'] == [128, 64, 1, 1]
    assert psa[prefix + 'conv_q_left.weight'] == [64, 128, 1, 1]
    assert psa[prefix + 'conv_v_left.weight'] == [64, 128, 1, 1]


def _paddleseg_psa(m, x):
    """PaddleSeg 2.8's polarized self-attention (adaptive average pooling,
    reshapes), from the module's weights."""
    n, _, h, w = x.shape
    c2 = m.inter_planes
    v = m.conv_v_right(x).reshape([n, c2, h * w])
    q = F.softmax(m.conv_q_right(x).reshape([n, 1, h * w]), axis=2)
    channel = F.sigmoid(m.conv_up(paddle.matmul(
        v, q.transpose([0, 2, 1])).unsqueeze(-1)))
    g = F.adaptive_avg_pool2d(m.conv_q_left(x), 1).reshape([n, 1, c2])
    theta = m.conv_v_left(x).reshape([n, c2, h * w])
    spatial = F.sigmoid(F.softmax(paddle.matmul(g, theta), axis=2)
                        .reshape([n, 1, h, w]))
    return x * spatial + x * channel


def test_psa_shapes_and_values():
    paddle.seed(0)
    m = PolarizedSelfAttentionModule(16, 16)
    x = paddle.randn([2, 16, 7, 9])
    out = m(x)
    assert tuple(out.shape) == (2, 16, 7, 9)
    assert tuple(m.channel_gate(x).shape) == (2, 16, 1, 1)
    assert tuple(m.spatial_gate(x).shape) == (2, 1, 7, 9)
    np.testing.assert_allclose(out.numpy(), _paddleseg_psa(m, x).numpy(),
                               rtol=1e-5, atol=1e-6)
    static = paddle.jit.to_static(m, full_graph=True, input_spec=[
        paddle.static.InputSpec([None, 16, None, None], 'float32')])
    np.testing.assert_allclose(static(x).numpy(), out.numpy(), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize('kwargs, message', [
    (dict(stage2_num_channels=[4]), 'stage2_num_channels needs 2 value'),
    (dict(stage4_num_blocks=[1, 1, 1]), 'stage4_num_blocks needs 4 value'),
    (dict(stage3_num_modules=0), 'stage3_num_modules must be at least 1'),
])
def test_bad_stage_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HRNet(**kwargs)


def test_bad_psa_and_se_settings():
    with pytest.raises(ValueError, match='planes must equal inplanes'):
        PolarizedSelfAttentionModule(16, 8)
    with pytest.raises(ValueError, match='turn has_se off'):
        tiny_hrnet(has_se=True)
