"""Every registered model builds, runs forward and backward on a tiny input
whose labels include the ignore index, gives every parameter a gradient and
no NaN."""

import numpy as np
import paddle
import pytest

from paddleseg.cvlibs import manager
from paddleseg.models.losses import CrossEntropyLoss

# A tiny instance of each registered model; a new model must add one here.
TINY = {
    'FCN': lambda: manager.MODELS['FCN'](
        num_classes=3, backbone=manager.BACKBONES['ResNet18_vd'](
            output_stride=8), backbone_indices=[-1], channels=16),
    'CCNet': lambda: manager.MODELS['CCNet'](
        num_classes=3, backbone=manager.BACKBONES['ResNet18_vd'](
            output_stride=8), recurrence=2, dropout_prob=0.1),
}


def test_every_registered_model_has_a_smoke_case():
    assert sorted(manager.MODELS.components_dict) == sorted(TINY)


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
    assert np.isfinite(out[0].numpy()).all()
