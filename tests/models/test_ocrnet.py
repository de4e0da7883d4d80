"""OCRNet: PaddleSeg's names and shapes, the same logits as PaddleSeg's
formulation (HRNet and head written out below from the state dict, by
PaddleSeg's key names), the padding flag, outputs in training and
evaluation."""

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from paddleseg.cvlibs import manager
from paddleseg.models.backbones import HRNet
from paddleseg.utils.weights import _match

# A small HRNet: (num_modules, num_blocks, num_channels) of stages 1 to 4.
# Stage 3 has two modules (module-to-module fusion); transition 1 changes
# channels, transitions 2 and 3 keep them and add a branch.
TINY_STAGES = ((1, [1], [8]), (1, [1, 1], [4, 8]), (2, [1, 1, 1], [4, 8, 16]),
               (1, [2, 1, 1, 1], [4, 8, 16, 32]))
NUM_CLASSES = 5


def tiny_backbone(**kwargs):
    settings = {}
    for s, (modules, blocks, channels) in enumerate(TINY_STAGES, 1):
        settings.update({'stage{}_num_modules'.format(s): modules,
                         'stage{}_num_blocks'.format(s): blocks,
                         'stage{}_num_channels'.format(s): channels})
    return HRNet(**settings, **kwargs)


def ocrnet(backbone, **kwargs):
    return manager.MODELS['OCRNet'](num_classes=NUM_CLASSES,
                                    backbone=backbone, backbone_indices=[0],
                                    ocr_mid_channels=24, ocr_key_channels=12,
                                    **kwargs)


def test_names_and_shapes_of_ocrnet_w18():
    with paddle.LazyGuard():  # shapes only
        model = manager.MODELS['OCRNet'](
            num_classes=19, backbone=manager.BACKBONES['HRNet_W18'](),
            backbone_indices=[0])
    own = {k: list(v.shape) for k, v in model.state_dict().items()}
    b, st = 'backbone.', 'backbone.st3.stage_st3_1.fuse_func.residual_st3_1_'
    assert own[b + 'conv_layer1_1._conv.weight'] == [64, 3, 3, 3]
    assert b + 'conv_layer1_1._conv.bias' not in own  # bias-free backbone
    assert own[b + 'la1.bb_layer2_1.conv_down._conv.weight'] == [256, 64, 1,
                                                                 1]
    assert own[b + 'tr1.transition_tr1_layer_2._conv.weight'] == [36, 256, 3,
                                                                  3]
    assert own[b + 'tr3.transition_tr3_layer_4._conv.weight'] == [144, 72, 3,
                                                                  3]
    assert own[b + 'st3.stage_st3_4.branches_func.bb_st3_4_branch_layer_3_4.'
               'conv2._batch_norm._variance'] == [72]
    assert own[b + 'st4.stage_st4_3.fuse_func.residual_st4_3_layer_1_4.'
               '_conv.weight'] == [18, 144, 1, 1]
    assert own[st + 'layer_3_1_1._conv.weight'] == [18, 18, 3, 3]
    assert own[st + 'layer_3_1_2._conv.weight'] == [72, 18, 3, 3]
    assert own['head.conv3x3_ocr._conv.weight'] == [512, 270, 3, 3]
    assert own['head.conv3x3_ocr._conv.bias'] == [512]  # the head has biases
    assert own['head.aux_head.0._conv.weight'] == [270, 270, 1, 1]
    assert own['head.aux_head.1.weight'] == [19, 270, 1, 1]
    assert own['head.spatial_ocr.attention_block.f_pixel.1._conv.weight'] \
        == [256, 256, 1, 1]
    assert own['head.spatial_ocr.attention_block.f_up._conv.weight'] == [
        512, 256, 1, 1]
    assert own['head.spatial_ocr.conv1x1.0._conv.weight'] == [512, 1024, 1, 1]
    assert own['head.cls_head.weight'] == [19, 512, 1, 1]
    assert len(own) == 1583  # PaddleSeg 2.8's OCRNet-HRNet_W18 state dict


@pytest.mark.parametrize('backbone, keys', [
    ('HRNet_W18', 'ocrnet_hrnetw18_keys.txt'),
    ('HRNet_W48', 'ocrnet_hrnetw48_keys.txt'),
])
def test_paddleseg_state_dict_loads_strictly(backbone, keys, paddleseg_keys):
    ref = paddleseg_keys(keys)
    with paddle.LazyGuard():
        model = manager.MODELS['OCRNet'](
            num_classes=19, backbone=manager.BACKBONES[backbone](),
            backbone_indices=[0])
    state = {k: np.zeros(s, np.float32) for k, s in ref.items()}
    _, report = _match(model, state)
    assert (report.missing, report.unexpected, report.mismatched) == \
        ([], [], [])
    assert report.loaded == len(ref) == len(model.state_dict())


# PaddleSeg's formulation, written from the state dict: functional ops,
# explicit paddings, F.interpolate, the head's reshape/transpose/bmm.

def _pads(x, kernel, stride, padding_same):
    """[left, right, top, bottom] of a conv: 'same' puts the smaller half of
    the padding first (TF), padding=1 pads both sides by (k - 1) / 2."""
    if not padding_same or kernel == 1:
        return [(kernel - 1) // 2] * 4
    pads = []
    for size in (x.shape[3], x.shape[2]):
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return pads


def _conv_bn(state, name, x, stride=1, relu=True, padding_same=True):
    weight = state[name + '._conv.weight']
    x = F.pad(x, _pads(x, weight.shape[2], stride, padding_same))
    x = F.conv2d(x, weight, state.get(name + '._conv.bias'), stride=stride)
    bn = name + '._batch_norm.'
    x = F.batch_norm(x, state[bn + '_mean'], state[bn + '_variance'],
                     state[bn + 'weight'], state[bn + 'bias'],
                     training=False, epsilon=1e-5)
    return F.relu(x) if relu else x


def _paddleseg_hrnet(state, x, padding_same, align_corners):
    def cbr(name, y, stride=1, relu=True):
        return _conv_bn(state, 'backbone.' + name, y, stride, relu,
                        padding_same)

    x = cbr('conv_layer1_2', cbr('conv_layer1_1', x, 2), 2)
    for i in range(1, TINY_STAGES[0][1][0] + 1):
        p = 'la1.bb_layer2_{}.'.format(i)
        y = cbr(p + 'conv3', cbr(p + 'conv2', cbr(p + 'conv1', x)),
                relu=False)
        x = F.relu(y + (cbr(p + 'conv_down', x, relu=False) if i == 1
                        else x))
    xs = [x]
    for s, (modules, blocks, _) in enumerate(TINY_STAGES[1:], 2):
        t = 'tr{0}.transition_tr{0}_layer_'.format(s - 1)
        xs = [cbr(t + str(i + 1), xs[min(i, len(xs) - 1)],
                  stride=2 if i == len(xs) else 1)
              if 'backbone.{}{}._conv.weight'.format(t, i + 1) in state
              else xs[i] for i in range(s)]
        for m in range(1, modules + 1):
            name = 'st{}_{}'.format(s, m)
            base = 'st{}.stage_{}.'.format(s, name)
            for b in range(s):
                for k in range(1, blocks[b] + 1):
                    p = '{}branches_func.bb_{}_branch_layer_{}_{}.'.format(
                        base, name, b + 1, k)
                    y = cbr(p + 'conv2', cbr(p + 'conv1', xs[b]), relu=False)
                    xs[b] = F.relu(y + xs[b])
            fused = []
            for i in range(s):
                out = xs[i]
                for j in range(s):
                    p = '{}fuse_func.residual_{}_layer_{}_{}'.format(
                        base, name, i + 1, j + 1)
                    if j > i:
                        out = out + F.interpolate(
                            cbr(p, xs[j], relu=False), xs[i].shape[2:],
                            mode='bilinear', align_corners=align_corners)
                    elif j < i:
                        y = xs[j]
                        for k in range(1, i - j + 1):
                            y = cbr('{}_{}'.format(p, k), y, 2,
                                    relu=k < i - j)
                        out = out + y
                fused.append(F.relu(out))
            xs = fused
    return paddle.concat([xs[0]] + [F.interpolate(
        y, xs[0].shape[2:], mode='bilinear', align_corners=align_corners)
        for y in xs[1:]], axis=1)


def _paddleseg_ocrnet(state, x, padding_same, align_corners, key_channels):
    feat = _paddleseg_hrnet(state, x, padding_same, align_corners)

    def cbr(name, y):
        # 1x1 convs, and the 3x3 conv3x3_ocr with padding=1.
        return _conv_bn(state, 'head.' + name, y, padding_same=False)

    regions = F.conv2d(cbr('aux_head.0', feat),
                       state['head.aux_head.1.weight'],
                       state['head.aux_head.1.bias'])
    pixels = cbr('conv3x3_ocr', feat)
    n, c, h, w = pixels.shape
    k = regions.shape[1]
    gathered = paddle.bmm(F.softmax(regions.reshape([n, k, -1]), axis=2),
                          pixels.reshape([n, c, -1]).transpose([0, 2, 1]))
    proxy = gathered.transpose([0, 2, 1]).unsqueeze(-1)
    a = 'spatial_ocr.attention_block.'
    query = cbr(a + 'f_pixel.1', cbr(a + 'f_pixel.0', pixels)).reshape(
        [n, key_channels, -1]).transpose([0, 2, 1])
    key = cbr(a + 'f_object.1', cbr(a + 'f_object.0', proxy)).reshape(
        [n, key_channels, -1])
    value = cbr(a + 'f_down', proxy).reshape([n, key_channels, -1]).transpose(
        [0, 2, 1])
    sim = F.softmax(key_channels ** -0.5 * paddle.bmm(query, key), axis=-1)
    context = paddle.bmm(sim, value).transpose([0, 2, 1]).reshape(
        [n, key_channels, h, w])
    context = cbr(a + 'f_up', context)
    fused = cbr('spatial_ocr.conv1x1.0', paddle.concat([context, pixels], 1))
    logit = F.conv2d(fused, state['head.cls_head.weight'],
                     state['head.cls_head.bias'])
    return F.interpolate(logit, x.shape[2:], mode='bilinear',
                         align_corners=align_corners)


def _randomise(model, seed=0):
    """Weights that keep activations O(1) through the network, batch-norm
    statistics away from 0/1, so every layer changes the logits."""
    rng = np.random.RandomState(seed)
    for name, value in model.state_dict().items():
        shape = list(value.shape)
        if name.endswith('_variance'):
            v = rng.uniform(0.5, 1.5, shape)
        elif name.endswith('_mean'):
            v = rng.uniform(-0.1, 0.1, shape)
        elif len(shape) == 4:
            v = rng.normal(0, 1 / np.sqrt(np.prod(shape[1:])), shape)
        else:
            v = rng.normal(0, 0.1, shape) + name.endswith('_norm.weight')
        value.set_value(paddle.to_tensor(v, value.dtype))
    return model


@pytest.fixture
def float64():
    paddle.set_default_dtype('float64')
    try:
        yield
    finally:
        paddle.set_default_dtype('float32')


@pytest.mark.parametrize('size', [(57, 70), (64, 96)])
@pytest.mark.parametrize('padding_same', [True, False])
@pytest.mark.parametrize('align_corners', [False, True])
def test_same_logits_as_paddleseg_formulation(float64, padding_same, size,
                                              align_corners):
    model = _randomise(ocrnet(tiny_backbone(padding_same=padding_same,
                                            align_corners=align_corners),
                              align_corners=align_corners))
    model.eval()
    x = paddle.to_tensor(np.random.RandomState(1).uniform(
        -1, 1, (2, 3) + size))
    state = model.state_dict()
    with paddle.no_grad():
        ours = model(x)[0].numpy()
        theirs = _paddleseg_ocrnet(state, x, padding_same, align_corners,
                                   key_channels=12).numpy()
    assert ours.dtype == np.float64 and ours.shape == (2, NUM_CLASSES) + size
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('size', [(57, 70), (64, 96)])
def test_padding_flag_changes_the_logits(float64, size):
    same = _randomise(ocrnet(tiny_backbone(padding_same=True)))
    one = ocrnet(tiny_backbone(padding_same=False))
    one.set_state_dict(same.state_dict())
    same.eval(), one.eval()
    x = paddle.to_tensor(np.random.RandomState(1).uniform(
        -1, 1, (1, 3) + size))
    with paddle.no_grad():
        a, b = same(x)[0].numpy(), one(x)[0].numpy()
    assert np.abs(a - b).max() > 0.05 * np.abs(a).max()


def test_outputs_in_training_and_evaluation():
    model = ocrnet(tiny_backbone())
    x = paddle.randn([2, 3, 45, 62])
    model.train()
    logits = model(x)
    assert [tuple(l.shape) for l in logits] == [(2, NUM_CLASSES, 45, 62)] * 2
    # The second output is the soft object regions (the auxiliary head).
    regions = model.head.aux_head(model.backbone(x)[0])
    np.testing.assert_allclose(logits[1].numpy(), F.interpolate(
        regions, [45, 62], mode='bilinear').numpy(), rtol=1e-5, atol=1e-6)
    model.eval()
    with paddle.no_grad():
        assert [tuple(l.shape) for l in model(x)] == [(2, NUM_CLASSES, 45,
                                                       62)]


def test_two_backbone_indices_regions_from_the_first():
    model = manager.MODELS['OCRNet'](
        num_classes=3, backbone=manager.BACKBONES['ResNet18_vd'](
            output_stride=8), backbone_indices=[2, 3], ocr_mid_channels=32,
        ocr_key_channels=16)
    own = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert own['head.aux_head.0._conv.weight'] == [256, 256, 1, 1]
    assert own['head.conv3x3_ocr._conv.weight'] == [32, 512, 3, 3]
    model.train()
    assert [tuple(l.shape) for l in model(paddle.randn([1, 3, 48, 40]))] == \
        [(1, 3, 48, 40)] * 2


def test_bad_backbone_indices():
    with pytest.raises(ValueError, match='backbone_indices takes one'):
        manager.MODELS['OCRNet'](num_classes=3, backbone=tiny_backbone(),
                                 backbone_indices=[0, 0, 0])


def test_conv_init_reaches_the_head_and_default_is_paddleseg():
    paddle.seed(0)
    default = ocrnet(tiny_backbone())
    kaiming = ocrnet(tiny_backbone(conv_init='kaiming'), conv_init='kaiming')
    w = default.head.conv3x3_ocr._conv.weight.numpy()
    assert abs(w.std() - 0.001) < 1e-4
    w = kaiming.head.conv3x3_ocr._conv.weight.numpy()
    assert abs(w.std() / np.sqrt(2.0 / w[0].size) - 1) < 0.1
    with pytest.raises(ValueError, match="got 'he'"):
        ocrnet(tiny_backbone(), conv_init='he')
