"""MscaleOCRNet: PaddleSeg's names and shapes, the same logits as PaddleSeg's
formulation (HRNet, OCR head, attention head and the multi-scale recursion
written out below from the state dict, by key name) for several scale lists,
training outputs, the ``mscale`` argument, ``dump_assets``, evaluation
through ``core.val.evaluate``, ``--opts model.mscale=...``, PaddleSeg's loss
recipe on the outputs, and export with a fixed scale list."""

import importlib.util
import os

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from paddleseg.core.trainer import compute_losses
from paddleseg.core.val import evaluate
from paddleseg.cvlibs import Config, SegBuilder, manager
from paddleseg.deploy.export import export_model
from paddleseg.deploy.predictor import DeployConfig, create_predictor
from paddleseg.cvlibs.builder import BuildError
from paddleseg.utils.metrics import (calculate_confusion,
                                     metrics_from_confusion)
from paddleseg.utils.weights import _match

# The tiny HRNet and PaddleSeg's HRNet formulation of the OCRNet test.
_spec = importlib.util.spec_from_file_location(
    'ocrnet_reference', os.path.join(os.path.dirname(os.path.abspath(
        __file__)), 'test_ocrnet.py'))
ocr_ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ocr_ref)

NUM_CLASSES = 5
KEY_CHANNELS = 12


def tiny(mscale=(0.5, 1.0, 2.0), padding_same=True, **kwargs):
    paddle.seed(0)
    return manager.MODELS['MscaleOCRNet'](
        num_classes=NUM_CLASSES, backbone=ocr_ref.tiny_backbone(
            padding_same=padding_same), mscale=mscale, ocr_mid_channels=24,
        ocr_key_channels=KEY_CHANNELS, attention_channels=10, **kwargs)


@pytest.fixture
def float64():
    paddle.set_default_dtype('float64')
    try:
        yield
    finally:
        paddle.set_default_dtype('float32')


# ---------------------------------------------------------------- names

def test_names_and_shapes_of_mscale_ocrnet_w48():
    with paddle.LazyGuard():  # shapes only
        model = manager.MODELS['MscaleOCRNet'](
            num_classes=19, backbone=manager.BACKBONES['HRNet_W48']())
    own = {k: list(v.shape) for k, v in model.state_dict().items()}
    ocr, d = 'ocr.', 'ocr.ocr_distri_head.'
    assert own[ocr + 'conv3x3_ocr._conv.weight'] == [512, 720, 3, 3]
    assert own[ocr + 'conv3x3_ocr._conv.bias'] == [512]
    for name in ('f_pixel', 'f_object'):
        assert own[d + name + '.conv_bn_relu_1._conv.weight'] == [256, 512, 1,
                                                                  1]
        assert own[d + name + '.conv_bn_relu_2._conv.weight'] == [256, 256, 1,
                                                                  1]
    assert own[d + 'f_down._conv.weight'] == [256, 512, 1, 1]
    assert own[d + 'f_up._conv.weight'] == [512, 256, 1, 1]
    assert own[d + 'conv_bn_dropout.0._conv.weight'] == [512, 1024, 1, 1]
    assert not [k for k in own if k.startswith(d) and k.endswith('_conv.bias')]
    assert own[ocr + 'cls_head.weight'] == [19, 512, 1, 1]
    assert own[ocr + 'cls_head.bias'] == [19]
    assert own[ocr + 'aux_head.0._conv.weight'] == [720, 720, 1, 1]
    assert own[ocr + 'aux_head.0._conv.bias'] == [720]
    assert own[ocr + 'aux_head.1.weight'] == [19, 720, 1, 1]
    assert own['scale_attn.conv_bn_re0._conv.weight'] == [256, 512, 3, 3]
    assert own['scale_attn.conv_bn_re1._conv.weight'] == [256, 256, 3, 3]
    assert own['scale_attn.conv2.weight'] == [1, 256, 1, 1]
    assert not [k for k in own if k.startswith('scale_attn') and
                k.endswith('bias') and '_batch_norm' not in k]
    assert len(own) == 1587  # PaddleSeg 2.8's MscaleOCRNet-HRNet_W48
    assert len([k for k in own if not k.startswith('backbone.')]) == 62
    dropout = model.ocr.ocr_distri_head.conv_bn_dropout[1]
    assert isinstance(dropout, paddle.nn.Dropout2D) and dropout.p == 0.05


def test_paddleseg_state_dict_loads_strictly(paddleseg_keys):
    ref = paddleseg_keys('mscaleocrnet_hrnetw48_keys.txt')
    with paddle.LazyGuard():
        model = manager.MODELS['MscaleOCRNet'](
            num_classes=19, backbone=manager.BACKBONES['HRNet_W48']())
    state = {k: np.zeros(s, np.float32) for k, s in ref.items()}
    _, report = _match(model, state)
    assert (report.missing, report.unexpected, report.mismatched) == \
        ([], [], [])
    assert report.loaded == len(ref) == len(model.state_dict()) == 1587


# ------------------------------------------- PaddleSeg's formulation

def _conv_bn(state, name, x, relu=True):
    # The head's convs: 1x1, and 3x3 with padding 1.
    return ocr_ref._conv_bn(state, name, x, padding_same=False, relu=relu)


def _conv(state, name, x):
    return F.conv2d(x, state[name + '.weight'], state.get(name + '.bias'))


def _paddleseg_fwd(state, x, padding_same):
    """PaddleSeg's ``_fwd``: (pred, aux, attn), each upsampled to ``x``."""
    feat = ocr_ref._paddleseg_hrnet(state, x, padding_same, False)
    feats = _conv_bn(state, 'ocr.conv3x3_ocr', feat)
    aux = _conv(state, 'ocr.aux_head.1', _conv_bn(state, 'ocr.aux_head.0',
                                                  feat))
    n, c, h, w = feats.shape
    probs = F.softmax(aux.reshape([n, NUM_CLASSES, -1]), axis=2)
    context = paddle.bmm(probs, feats.reshape([n, c, -1]).transpose(
        [0, 2, 1])).transpose([0, 2, 1]).unsqueeze(3)      # N, C, K, 1
    d = 'ocr.ocr_distri_head.'

    def two(name, y):
        return _conv_bn(state, d + name + '.conv_bn_relu_2', _conv_bn(
            state, d + name + '.conv_bn_relu_1', y))

    query = two('f_pixel', feats).reshape([n, KEY_CHANNELS, -1]).transpose(
        [0, 2, 1])
    key = two('f_object', context).reshape([n, KEY_CHANNELS, -1])
    value = _conv_bn(state, d + 'f_down', context).reshape(
        [n, KEY_CHANNELS, -1]).transpose([0, 2, 1])
    sim = F.softmax(KEY_CHANNELS ** -.5 * paddle.bmm(query, key), axis=-1)
    ctx = paddle.bmm(sim, value).transpose([0, 2, 1]).reshape(
        [n, KEY_CHANNELS, h, w])
    ctx = _conv_bn(state, d + 'f_up', ctx)
    mid = _conv_bn(state, d + 'conv_bn_dropout.0', paddle.concat([ctx, feats],
                                                                 1))
    pred = _conv(state, 'ocr.cls_head', mid)
    a = _conv_bn(state, 'scale_attn.conv_bn_re0', mid)
    a = _conv_bn(state, 'scale_attn.conv_bn_re1', a)
    attn = F.sigmoid(_conv(state, 'scale_attn.conv2', a))
    return tuple(F.interpolate(t, x.shape[2:], mode='bilinear')
                 for t in (pred, aux, attn))


def _paddleseg_nscale(state, x, scales, padding_same):
    """PaddleSeg's ``nscale_forward``: its output, at whatever size it
    ends."""
    pred = None
    for s in sorted(scales, reverse=True):
        p, _, a = _paddleseg_fwd(state, F.interpolate(
            x, scale_factor=paddle.to_tensor([s, s]), mode='bilinear'),
            padding_same)
        if pred is None:
            pred = p
        elif s >= 1.0:
            pred = a * p + (1 - a) * F.interpolate(pred, p.shape[2:],
                                                   mode='bilinear')
        else:
            size = pred.shape[2:]
            pred = (F.interpolate(a * p, size, mode='bilinear') +
                    (1 - F.interpolate(a, size, mode='bilinear')) * pred)
    return pred


def _paddleseg_two_scale(state, x, padding_same):
    """PaddleSeg's ``two_scale_forward`` in training:
    [joint_aux, joint_pred, pred_05x, pred_10x]."""
    p_lo, aux_lo, a = _paddleseg_fwd(state, F.interpolate(
        x, scale_factor=0.5, mode='bilinear'), padding_same)
    p_hi, aux_hi, _ = _paddleseg_fwd(state, x, padding_same)
    size = p_hi.shape[2:]
    up = F.interpolate(a, size, mode='bilinear')
    return [F.interpolate(a * aux_lo, size, mode='bilinear') +
            (1 - up) * aux_hi,
            F.interpolate(a * p_lo, size, mode='bilinear') + (1 - up) * p_hi,
            F.interpolate(p_lo, size, mode='bilinear'), p_hi]


SCALE_LISTS = {
    'with 1.0': [0.5, 1.0, 2.0],
    'without 1.0': [0.75, 1.5],
    'unsorted': [2.0, 0.5, 1.0],
    'single': [1.0],
    'single, not 1.0': [0.5],
    'odd factors': [0.25, 1.25, 1.75],
}


@pytest.mark.parametrize('size', [(57, 70), (64, 96)])
@pytest.mark.parametrize('padding_same', [True, False])
def test_same_logits_as_paddleseg_formulation(float64, size, padding_same):
    model = ocr_ref._randomise(tiny(padding_same=padding_same))
    model.eval()
    state = model.state_dict()
    x = paddle.to_tensor(np.random.RandomState(1).uniform(
        -1, 1, (2, 3) + size))
    with paddle.no_grad():
        for name, scales in SCALE_LISTS.items():
            model.mscale = scales
            ours = model(x)[0].numpy()
            theirs = _paddleseg_nscale(state, x, scales, padding_same)
            if 1.0 not in scales:
                # PaddleSeg's defect: its output has the size of the last
                # scale >= 1 it combined (or of the smallest scale), not the
                # input's. The corrected reference resizes it to the input.
                assert tuple(theirs.shape[2:]) != size, name
                theirs = F.interpolate(theirs, size, mode='bilinear')
            assert ours.dtype == np.float64, name
            assert ours.shape == (2, NUM_CLASSES) + size, name
            np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-10,
                                       atol=1e-10, err_msg=name)
        # mscale None: PaddleSeg's two-scale forward in evaluation.
        model.mscale = None
        ours = model(x)
        theirs = _paddleseg_two_scale(state, x, padding_same)[1]
        assert len(ours) == 1
        np.testing.assert_allclose(ours[0].numpy(), theirs.numpy(),
                                   rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('size', [(57, 70), (64, 96)])
def test_training_outputs_are_paddleseg_s(float64, size):
    model = ocr_ref._randomise(tiny())
    model.train()
    for layer in model.sublayers():  # deterministic: running statistics,
        if isinstance(layer, paddle.nn.BatchNorm2D):  # no dropout
            layer.eval()
        if isinstance(layer, paddle.nn.Dropout2D):
            layer.p = 0.0
    x = paddle.to_tensor(np.random.RandomState(2).uniform(-1, 1,
                                                          (2, 3) + size))
    ours = model(x)
    theirs = _paddleseg_two_scale(model.state_dict(), x, True)
    assert model.output_names == ('joint_aux', 'joint_pred', 'pred_0.5x',
                                  'pred_1.0x')
    assert len(ours) == len(model.output_names) == 4
    for name, a, b in zip(model.output_names, ours, theirs):
        assert tuple(a.shape) == (2, NUM_CLASSES) + size, name
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10,
                                   atol=1e-10, err_msg=name)


def test_training_step_with_paddleseg_s_loss(write_yaml):
    """PaddleSeg's loss section ([CE, MixedLoss(RMI, CE), CE, CE], coef [0.4,
    1, 0.05, 0.05]) builds and trains the four outputs."""
    path = write_yaml('m.yml', """
model:
  type: MscaleOCRNet
  num_classes: 3
  backbone: {type: HRNet_W18_Small_V1}
  ocr_mid_channels: 16
  ocr_key_channels: 8
  attention_channels: 8
loss:
  types:
    - type: CrossEntropyLoss
    - type: MixedLoss
      losses: [{type: RMILoss, num_classes: 3}, {type: CrossEntropyLoss}]
      coef: [1.0, 1.0]
    - type: CrossEntropyLoss
    - type: CrossEntropyLoss
  coef: [0.4, 1.0, 0.05, 0.05]
""")
    builder = SegBuilder(Config(path))
    model, losses = builder.model, builder.loss
    assert len(losses['types']) == len(model.output_names)
    model.train()
    x = paddle.randn([2, 3, 64, 64])
    label = paddle.to_tensor(np.random.RandomState(0).randint(
        0, 3, (2, 64, 64)).astype('int64'))
    values = compute_losses(model(x), label, losses)
    assert len(values) == 5  # MixedLoss gives two terms
    total = paddle.add_n(values)
    total.backward()
    assert np.isfinite(total.item())
    assert model.scale_attn.conv2.weight.grad is not None


# -------------------------------------------------------------- mscale

@pytest.mark.parametrize('mscale, message', [
    ([], 'non-empty list'),
    ('0.5,1.0', 'non-empty list'),
    ([0.5, 0], 'positive number; 0 in'),
    ([-1.0], 'positive number; -1.0 in'),
    ([True, 1.0], 'positive number; True in'),
    ([float('nan')], 'positive number; nan in'),
    ([0.5, 'a'], "positive number; 'a' in"),
    ([1.0, 1, 0.5], 'repeats a scale'),
])
def test_bad_mscale(mscale, message):
    with pytest.raises(ValueError, match='MscaleOCRNet: .*' + message):
        tiny(mscale=mscale)
    model = tiny(mscale=None)
    with pytest.raises(ValueError, match=message):
        model.mscale = mscale
    assert model.mscale is None


def test_mscale_values_are_floats_a_number_is_one_scale():
    assert tiny(mscale=[2, 1, 0.5]).mscale == [2.0, 1.0, 0.5]
    assert tiny(mscale=1.5).mscale == [1.5]
    assert tiny(mscale=None).mscale is None


def test_conv_init_reaches_the_ocr_head_and_default_is_paddleseg():
    w = tiny().ocr.conv3x3_ocr._conv.weight.numpy()
    assert abs(w.std() - 0.001) < 1e-4
    w = tiny(conv_init='kaiming').ocr.conv3x3_ocr._conv.weight.numpy()
    assert abs(w.std() / np.sqrt(2.0 / w[0].size) - 1) < 0.1
    with pytest.raises(ValueError, match="got 'he'"):
        tiny(conv_init='he')


def _scales_seen(model, x):
    """The input sizes ``_fwd`` ran at for one evaluation forward."""
    seen, fwd = [], model._fwd

    def spy(y, *args, **kwargs):
        seen.append(tuple(y.shape[2:]))
        return fwd(y, *args, **kwargs)

    model._fwd = spy
    try:
        with paddle.no_grad():
            out = model(x)
    finally:
        del model._fwd
    return seen, out


def test_evaluation_runs_each_scale_largest_first():
    model = tiny(mscale=[0.75, 1.0, 1.5])
    model.eval()
    seen, out = _scales_seen(model, paddle.randn([1, 3, 41, 58]))
    assert seen == [(61, 87), (41, 58), (30, 43)]  # floor(size * scale)
    assert len(out) == 1 and tuple(out[0].shape) == (1, NUM_CLASSES, 41, 58)
    model.mscale = None  # PaddleSeg's two-scale forward: 0.5 and 1.0
    seen, out = _scales_seen(model, paddle.randn([1, 3, 41, 58]))
    assert sorted(seen) == [(20, 29), (41, 58)]
    assert len(out) == 1


def test_dump_assets():
    model = ocr_ref._randomise(tiny(mscale=[2.0, 0.5, 1.0]))
    model.eval()
    x = paddle.randn([2, 3, 37, 50])
    assets = model.dump_assets(x)
    assert list(assets) == ['attn_0.5x', 'pred_0.5x', 'attn_1.0x',
                            'pred_1.0x', 'pred_2.0x', 'pred']
    for name, value in assets.items():
        channels = 1 if name.startswith('attn_') else NUM_CLASSES
        assert tuple(value.shape) == (2, channels, 37, 50), name
        assert value.dtype == paddle.float32 and value.stop_gradient, name
    attn = np.concatenate([assets[k].numpy() for k in assets
                           if k.startswith('attn_')])
    assert attn.min() >= 0 and attn.max() <= 1 and attn.std() > 0
    with paddle.no_grad():
        np.testing.assert_allclose(assets['pred'].numpy(),
                                   model(x)[0].numpy(), rtol=1e-6, atol=1e-6)
        model.mscale = [1.0]
        np.testing.assert_allclose(assets['pred_1.0x'].numpy(),
                                   model(x)[0].numpy(), rtol=1e-6, atol=1e-6)
        # The 1.0 scale's weight, as the attention head gives it.
        _, _, representation = model.ocr(model.backbone(x))
        np.testing.assert_allclose(
            assets['attn_1.0x'].numpy(), F.interpolate(
                model.scale_attn(representation), [37, 50],
                mode='bilinear').numpy(), rtol=1e-5, atol=1e-6)
    model.mscale = None
    assert list(model.dump_assets(x)) == ['attn_0.5x', 'pred_0.5x',
                                          'pred_1.0x', 'pred']


# ---------------------------------------------- evaluation and config

class TinySet:
    """Three val samples of odd sizes, one padded by its transforms."""

    num_classes = NUM_CLASSES
    ignore_index = 255

    def __init__(self):
        rng = np.random.RandomState(0)
        self.samples = []
        for i, (h, w) in enumerate([(33, 47), (40, 40), (29, 52)]):
            label = rng.randint(0, NUM_CLASSES, (h, w))
            label[:3] = 255
            info = [('padding', (h, w - 4))] if i == 2 else []
            if info:
                label = label[:, :w - 4]
            self.samples.append({
                'img': rng.uniform(-1, 1, (3, h, w)).astype('float32'),
                'label': label, 'trans_info': info, 'img_path': str(i)})

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        return dict(self.samples[i])


def test_evaluate_with_a_scale_list():
    model = ocr_ref._randomise(tiny(mscale=[0.75, 1.0, 1.5]))
    dataset = TinySet()
    metrics = evaluate(model, dataset, print_detail=False)
    conf = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    model.eval()
    with paddle.no_grad():
        for sample in dataset.samples:
            logit = model(paddle.to_tensor(sample['img'][None]))[0]
            pred = logit.argmax(1)[0].numpy()[:, :sample['label'].shape[1]]
            conf += calculate_confusion(pred, sample['label'], NUM_CLASSES,
                                        255)
    expected = metrics_from_confusion(conf)
    assert metrics['mIoU'] == pytest.approx(expected['mIoU'])
    assert metrics['Acc'] == pytest.approx(expected['Acc'])
    # Another list gives other labels: evaluate used the model's list.
    model.mscale = [0.5]
    assert evaluate(model, dataset, print_detail=False)['Acc'] != \
        pytest.approx(expected['Acc'])


CONFIG = """
model:
  type: MscaleOCRNet
  num_classes: 3
  backbone: {type: HRNet_W18_Small_V1}
  ocr_mid_channels: 16
  ocr_key_channels: 8
  attention_channels: 8
"""


@pytest.mark.parametrize('opts, mscale', [
    ([], [0.5, 1.0, 2.0]),
    (['model.mscale=[0.75,1.0,1.5]'], [0.75, 1.0, 1.5]),
    (['model.mscale=[1.5, 0.75]'], [1.5, 0.75]),
    (['model.mscale=None'], None),
])
def test_opts_set_the_scales(write_yaml, opts, mscale):
    path = write_yaml('m.yml', CONFIG)
    assert SegBuilder(Config(path, opts=opts)).model.mscale == mscale


def test_opts_with_a_bad_scale_list_say_so(write_yaml):
    path = write_yaml('m.yml', CONFIG)
    with pytest.raises(BuildError, match='model .*MscaleOCRNet.*positive'):
        SegBuilder(Config(path, opts=['model.mscale=[0.5,-1]'])).model


# --------------------------------------------------------------- export

def test_export_with_a_fixed_scale_list(tmp_path, as_if_trained):
    # The README's list; the smoke test exports PaddleSeg's default and a
    # list without 1.0 (at one size).
    model = as_if_trained(ocr_ref._randomise(tiny(mscale=[0.75, 1.0, 1.5])))
    model.eval()
    export_model(model, str(tmp_path), [{'type': 'Normalize'}],
                 input_shape=[-1, 3, -1, -1], output_op='none')
    # oneDNN on (the default; the smoke test runs both settings).
    for onednn in (True, ):
        predictor = create_predictor(DeployConfig(str(tmp_path)),
                                     cpu_threads=1, enable_mkldnn=onednn)
        handle = predictor.get_input_handle(predictor.get_input_names()[0])
        for size in ((45, 62), (64, 96)):  # one program, any size
            x = np.random.RandomState(3).uniform(-1, 1, (1, 3) + size)
            x = x.astype('float32')
            with paddle.no_grad():
                eager = model(paddle.to_tensor(x))[0].numpy()
            handle.reshape(list(x.shape))
            handle.copy_from_cpu(x)
            predictor.run()
            out = predictor.get_output_handle(
                predictor.get_output_names()[0]).copy_to_cpu()
            assert out.shape == eager.shape == (1, NUM_CLASSES) + size
            assert np.abs(out - eager).max() < 1e-4 * np.abs(eager).max()
            assert (out.argmax(1) == eager.argmax(1)).mean() >= 0.999


# -------------------------------------------------------------- configs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
CONFIGS = os.path.join(ROOT, 'configs', 'mscale_ocrnet')
PADDLESEG_CONFIG = os.path.join(
    os.path.dirname(ROOT), 'shared', 'compat', 'paddleseg_configs', 'configs',
    'mscale_ocrnet', 'mscale_ocrnet_hrnetv2_psa_cityscapes_1024x2048_150k.yml')


@pytest.mark.skipif(not os.path.isfile(PADDLESEG_CONFIG),
                    reason='PaddleSeg reference configs not present')
def test_paddleseg_recipe_is_paddleseg_s():
    ours = Config(os.path.join(
        CONFIGS, os.path.basename(PADDLESEG_CONFIG))).dic
    theirs = Config(PADDLESEG_CONFIG).dic
    for key in ('batch_size', 'iters', 'optimizer', 'lr_scheduler', 'loss'):
        assert ours[key] == theirs[key], key
    assert ours['train_dataset']['transforms'] == \
        theirs['train_dataset']['transforms']
    assert ours['val_dataset']['transforms'] == \
        theirs['val_dataset']['transforms']
    assert ours['model'].pop('mscale') == [0.5, 1.0, 2.0]  # the default
    assert ours['model'] == theirs['model']


def test_nvidia_recipe():
    dic = Config(os.path.join(
        CONFIGS, 'mscale_ocrnet_hrnetw48_cityscapes_1024x2048_nvidia.yml')).dic
    assert (dic['batch_size'], dic['iters']) == (1, 65000)
    assert dic['model']['mscale'] == [0.5, 1.0, 2.0]
    assert dic['model']['backbone'] == {'type': 'HRNet_W48',
                                        'padding_same': False}
    assert dic['lr_scheduler'] == {'type': 'PolynomialDecay',
                                   'learning_rate': 0.005, 'end_lr': 0.0,
                                   'power': 2}
    assert dic['optimizer']['weight_decay'] == 1e-4
    crop = [t for t in dic['train_dataset']['transforms']
            if t['type'] == 'RandomPaddingCrop']
    assert crop[0]['crop_size'] == [2048, 1024]
    assert dic['loss']['coef'] == [0.4, 1.0, 0.05, 0.05]
    rmi = dic['loss']['types'][1]['losses'][0]
    assert (rmi['type'], rmi['rmi_pool_way'], rmi['rmi_pool_size']) == (
        'RMILoss', 1, 4)
