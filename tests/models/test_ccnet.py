"""CCNet: PaddleSeg's names and shapes, native = reference, the same logits as
PaddleSeg's formulation of the head, outputs in training and evaluation."""

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from benchmarks.cca_op import paddleseg_style
from paddleseg.cvlibs import manager
from paddleseg.utils.weights import _match


def ccnet(recurrence=2, num_classes=19, backbone='ResNet18_vd', **kwargs):
    paddle.seed(0)
    return manager.MODELS['CCNet'](
        num_classes=num_classes, backbone=manager.BACKBONES[backbone](
            output_stride=8), backbone_indices=[2, 3], recurrence=recurrence,
        enable_auxiliary_loss=True, **kwargs)


def _with_attention(model, gamma=0.7):
    """gamma starts at 0 (the layer is then the identity); make it count."""
    model.head.cca.gamma.set_value(paddle.to_tensor([gamma]))
    return model


def test_head_and_aux_names_and_shapes():
    own = {k: list(v.shape) for k, v in ccnet().state_dict().items()}
    assert own['head.cca.gamma'] == [1]
    assert own['head.cca.q_conv.weight'] == [16, 128, 1, 1]
    assert own['head.cca.v_conv.weight'] == [128, 128, 1, 1]
    assert own['head.conva._conv.weight'] == [128, 512, 3, 3]
    assert 'head.conva._conv.bias' not in own  # bias_attr=False, as PaddleSeg
    assert own['head.out.conv_bn_relu._conv.weight'] == [512, 640, 3, 3]
    assert own['head.out.conv.weight'] == [19, 512, 1, 1]
    assert own['aux_head.conv_bn_relu._conv.weight'] == [512, 256, 3, 3]
    assert len(own) == 148  # PaddleSeg 2.8's CCNet-ResNet18_vd state dict


@pytest.mark.parametrize('backbone, keys', [
    ('ResNet18_vd', 'ccnet_r18_keys.txt'),
    ('ResNet50_vd', 'ccnet_r50_keys.txt'),
])
def test_paddleseg_state_dict_loads_strictly(backbone, keys, paddleseg_keys):
    ref = paddleseg_keys(keys)
    model = ccnet(backbone=backbone)
    state = {k: np.full(s, 0.5, np.float32) for k, s in ref.items()}
    _, report = _match(model, state)
    assert (report.missing, report.unexpected, report.mismatched) == \
        ([], [], [])
    assert report.loaded == len(ref)


def _paddleseg_head(head, x):
    """The RCCA head computed as PaddleSeg 2.8 writes it (bmm, paddle.diag),
    from our layer's weights."""
    cca = head.cca
    feat = head.conva(x)
    for _ in range(head.recurrence):
        out = paddleseg_style(cca.q_conv(feat), cca.k_conv(feat),
                              cca.v_conv(feat))
        feat = cca.gamma * out + feat
    return head.out(paddle.concat([x, head.convb(feat)], axis=1))


@pytest.mark.parametrize('recurrence', [1, 2])
def test_same_logits_as_paddleseg_formulation(recurrence):
    model = _with_attention(ccnet(recurrence))
    model.eval()
    x = paddle.randn([1, 3, 64, 80])
    with paddle.no_grad():
        ours = model(x)[0]
        feat = model.backbone(x)[3]
        theirs = F.interpolate(_paddleseg_head(model.head, feat), x.shape[2:],
                               mode='bilinear', align_corners=False)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize('recurrence', [1, 2])
def test_native_and_reference_backends_agree(recurrence):
    x = paddle.randn([2, 3, 48, 64])
    outs, grads = [], []
    for backend in ('native', 'reference'):
        model = _with_attention(ccnet(recurrence, num_classes=5,
                                      cca_backend=backend))
        model.train()
        logits = model(x)
        (logits[0].mean() + 0.4 * logits[1].mean()).backward()
        outs.append([l.numpy() for l in logits])
        grads.append(model.head.cca.q_conv.weight.grad.numpy())
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-3, atol=1e-6)


def test_outputs_in_training_and_evaluation():
    x = paddle.randn([1, 3, 32, 48])
    model = ccnet(1, num_classes=4)
    model.train()
    assert [tuple(l.shape) for l in model(x)] == [(1, 4, 32, 48)] * 2
    model.eval()
    with paddle.no_grad():
        assert [tuple(l.shape) for l in model(x)] == [(1, 4, 32, 48)]
    no_aux = manager.MODELS['CCNet'](
        num_classes=4, backbone=manager.BACKBONES['ResNet18_vd'](
            output_stride=8), enable_auxiliary_loss=False)
    no_aux.train()
    assert len(no_aux(x)) == 1 and not hasattr(no_aux, 'aux_head')


def test_attention_maps_per_recurrence_sum_to_one():
    model = _with_attention(ccnet(2, num_classes=4))
    model.eval()
    maps = model.attention_maps(paddle.randn([1, 3, 48, 64]))
    assert len(maps) == 2 and tuple(maps[0].shape) == (1, 6, 8, 14)
    for m in maps:
        np.testing.assert_allclose(m.sum(-1).numpy(), 1, rtol=1e-5)
        # The pixel counts once, in its row: its column entry is masked
        # (Paddle's CPU softmax turns -inf into ~1e-28, not 0).
        assert (m[0, :, :, :6].numpy().diagonal(axis1=0, axis2=2) < 1e-20
                ).all()


@pytest.mark.parametrize('kwargs, message', [
    ({'backbone_indices': [3]}, 'backbone_indices needs two stages'),
    ({'recurrence': 0}, 'recurrence must be at least 1'),
])
def test_bad_arguments(kwargs, message):
    args = dict(num_classes=4, backbone=manager.BACKBONES['ResNet18_vd']())
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        manager.MODELS['CCNet'](**args)
