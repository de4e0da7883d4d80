"""The PaddleSeg / NVIDIA recipe losses together: PaddleSeg golden values,
both label layouts, batches, MixedLoss through the trainer's compute_losses,
and the recipes' loss sections built from configs."""

import os

import numpy as np
import paddle
import pytest

from paddleseg.core.trainer import compute_losses
from paddleseg.models.losses import (BootstrappedCrossEntropyLoss,
                                     CrossEntropyLoss, DiceLoss,
                                     LovaszHingeLoss, LovaszSoftmaxLoss,
                                     MixedLoss, RMILoss)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
COMPAT = os.path.join(os.path.dirname(ROOT), 'shared', 'compat',
                      'paddleseg_configs', 'configs')


def inputs(seed=0, n=2, c=3, h=6, w=7):
    rng = np.random.RandomState(seed)
    logit = (2 * rng.randn(n, c, h, w)).astype('float32')
    label = rng.randint(0, c, (n, h, w)).astype('int64')
    label[:, 0, :3] = 255
    return logit, label


LOGIT, LABEL = inputs()
BINARY = np.where(LABEL == 255, 255, LABEL % 2)

# name: (loss, channels used, labels, value of PaddleSeg v2.8.0's loss on
# the same inputs, run once on Paddle 3.3.1 CPU; its DiceLoss was given a
# copy of the labels, since it edits them).
GOLDEN = {
    'lovasz_softmax': (LovaszSoftmaxLoss(), 3, LABEL, 0.7016091346740723),
    'lovasz_softmax_all': (LovaszSoftmaxLoss(classes='all'), 3, LABEL,
                           0.7016091346740723),
    'lovasz_hinge_1ch': (LovaszHingeLoss(), 1, BINARY, 2.3001554012298584),
    'lovasz_hinge_2ch': (LovaszHingeLoss(), 2, BINARY, 2.8237545490264893),
    'dice': (DiceLoss(), 3, LABEL, 0.5857639312744141),
    'dice_weighted': (DiceLoss(weight=[0.2, 1.0, 3.0], smooth=0.5), 3, LABEL,
                      0.7630496621131897),
    'bootstrapped': (BootstrappedCrossEntropyLoss(10, 0.7), 3, LABEL,
                     3.072195529937744),
    'bootstrapped_weighted': (BootstrappedCrossEntropyLoss(
        30, 0.3, weight=[0.2, 1.0, 3.0]), 3, LABEL, 3.761561393737793),
    'rmi': (RMILoss(num_classes=3), 3, LABEL, None),
}


@pytest.mark.parametrize('name', sorted(GOLDEN))
def test_recipe_losses_paddleseg_values_layouts_and_compute_losses(name):
    loss, channels, label, golden = GOLDEN[name]
    logit = paddle.to_tensor(LOGIT[:, :channels])
    raw = label.copy()
    nhw = paddle.to_tensor(label)
    value = loss(logit, nhw)
    if golden is not None:
        assert value.item() == pytest.approx(golden, rel=2e-6)
    assert value.shape == []
    # (N, 1, H, W) labels give the same value; the labels stay as given.
    assert loss(logit, paddle.to_tensor(label[:, None])).item() == \
        pytest.approx(value.item(), rel=1e-6)
    np.testing.assert_array_equal(nhw.numpy(), raw)
    # Inside MixedLoss, through the trainer's compute_losses, with a second
    # loss after it on the same label tensor (CE; one-channel scores have
    # none, so the hinge loss again).
    after = CrossEntropyLoss() if channels > 1 else LovaszHingeLoss()
    alone = after(paddle.to_tensor(LOGIT[:, :channels]),
                  paddle.to_tensor(raw)).item()
    x = paddle.to_tensor(LOGIT[:, :channels], stop_gradient=False)
    mixed = {'types': [MixedLoss([loss, after], [0.5, 1.0])], 'coef': [2.0]}
    values = compute_losses([x], nhw, mixed)
    assert [v.item() for v in values] == pytest.approx(
        [value.item(), 2.0 * alone], rel=1e-6)
    paddle.add_n(values).backward()
    assert np.isfinite(x.grad.numpy()).all()


def test_batch_of_two_is_not_two_batches_of_one_where_paddleseg_says_so():
    # Bootstrapped CE and Dice average per image; the Lovasz losses rank the
    # whole batch together.
    logit, label = paddle.to_tensor(LOGIT), paddle.to_tensor(LABEL)
    for loss in (BootstrappedCrossEntropyLoss(10, 0.7), DiceLoss()):
        halves = [loss(logit[i:i + 1], label[i:i + 1]).item()
                  for i in range(2)]
        assert loss(logit, label).item() == pytest.approx(np.mean(halves),
                                                          rel=1e-6)
    lovasz = LovaszSoftmaxLoss()
    halves = [lovasz(logit[i:i + 1], label[i:i + 1]).item() for i in range(2)]
    assert abs(lovasz(logit, label).item() - np.mean(halves)) > 1e-4


@pytest.mark.skipif(not os.path.isdir(COMPAT),
                    reason='PaddleSeg reference configs not present')
def test_mscale_ocrnet_recipe_on_two_classes_builds_rmi_with_two(tmp_path):
    # PaddleSeg#3020: the recipe's MixedLoss[RMILoss, CE] on a 2-class
    # dataset; RMILoss's own default would be 19.
    from paddleseg.cvlibs import Config, SegBuilder
    base = os.path.join(COMPAT, 'mscale_ocrnet',
                        'mscale_ocrnet_hrnetv2_psa_cityscapes_1024x2048_150k'
                        '.yml')
    dataset = ('  _inherited_: False\n  type: Dataset\n  dataset_root: x\n'
               '  num_classes: 2\n  train_path: x/t.txt\n  val_path: '
               'x/v.txt\n  transforms: [{type: Normalize}]\n')
    path = tmp_path / 'two.yml'
    path.write_text('_base_: {}\nmodel:\n  num_classes: 2\ntrain_dataset:\n'
                    '{}  mode: train\nval_dataset:\n{}  mode: val\n'.format(
                        base, dataset, dataset))
    mixed = SegBuilder(Config(str(path))).loss['types'][1]
    assert isinstance(mixed.losses[0], RMILoss)
    assert mixed.losses[0].num_classes == 2


def test_cityscapes_sota_loss_section_builds(tmp_path):
    # contrib/CityscapesSOTA: DiceLoss x4 before BootstrappedCrossEntropyLoss
    # x4 (min_K 100000, loss_th 0.05), one per output.
    from paddleseg.cvlibs import Config, SegBuilder
    path = tmp_path / 'c.yml'
    path.write_text("""
train_dataset:
  type: Dataset
  dataset_root: data/x
  num_classes: 19
  train_path: data/x/train.txt
  transforms: [{type: Normalize}]
  mode: train
loss:
  types:
    - {type: DiceLoss}
    - {type: BootstrappedCrossEntropyLoss, min_K: 100000, loss_th: 0.05}
  coef: [1, 1]
""")
    dice, boot = SegBuilder(Config(str(path))).loss['types']
    assert isinstance(dice, DiceLoss) and dice.ignore_index == 255
    assert (boot.K, boot.threshold) == (100000, 0.05)
