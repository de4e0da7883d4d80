"""Lovasz-Softmax and Lovasz hinge losses against hand-computed values and an
independent numpy implementation of the Lovasz extension."""

import math

import numpy as np
import paddle
import pytest

from paddleseg.models.losses import LovaszHingeLoss, LovaszSoftmaxLoss


def np_lovasz(errors, gt):
    """Lovasz extension of the Jaccard loss, from its definition: with the
    pixels in decreasing order of error and S_k the first k of them,
    sum_k e_k (J(S_k) - J(S_k-1)), J(S) = |S| / |gt u S|."""
    order = np.argsort(-errors, kind='stable')
    gt_set = set(np.flatnonzero(gt))
    total, previous, chosen = 0.0, 0.0, set()
    for i in order:
        chosen.add(i)
        jaccard = len(chosen) / len(gt_set | chosen)
        total += errors[i] * (jaccard - previous)
        previous = jaccard
    return total


def np_softmax(x, axis=1):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def np_lovasz_softmax(logit, label, classes='present', ignore=255):
    prob = np_softmax(logit.astype('float64')).transpose(0, 2, 3, 1)
    prob = prob.reshape(-1, logit.shape[1])
    label = label.reshape(-1)
    prob, label = prob[label != ignore], label[label != ignore]
    ids = range(logit.shape[1]) if classes in ('all', 'present') else classes
    losses = [np_lovasz(np.abs((label == c) - prob[:, c]), label == c)
              for c in ids if classes != 'present' or (label == c).any()]
    return np.mean(losses)


def test_lovasz_hinge_hand_computed():
    # Scores 2, -1, 0.5 on labels 1, 0, 0: hinge errors -1, 0, 1.5. In
    # decreasing order the labels are 0, 0, 1; Jaccard of the first k:
    # 1/2, 2/3, 3/3, so the gradient is 1/2, 1/6, 1/3 and the loss
    # 1.5 * 1/2 + 0 * 1/6 + relu(-1) * 1/3 = 0.75.
    logit = paddle.to_tensor([[[[2.0, -1.0, 0.5, 7.0]]]])
    label = paddle.to_tensor([[[1, 0, 0, 255]]])
    assert LovaszHingeLoss()(logit, label).item() == pytest.approx(0.75)


def test_lovasz_softmax_hand_computed():
    # Two classes, three pixels with class-0 probabilities 0.8, 0.4, 0.3 and
    # labels 0, 0, 1 (a fourth pixel is ignored).
    # Class 0: errors 0.2, 0.6, 0.3 -> order (0.6 gt1, 0.3 gt0, 0.2 gt1);
    #   J: 1/2, 2/3, 3/3 -> 0.6/2 + 0.3/6 + 0.2/3.
    # Class 1: p1 = 0.2, 0.6, 0.7 on gt 0, 0, 1: errors 0.2, 0.6, 0.3 ->
    #   order (0.6 gt0, 0.3 gt1, 0.2 gt0); J: 1/2, 2/2, 3/3 -> 0.6/2 + 0.3/2.
    p = np.array([0.8, 0.4, 0.3, 0.5])
    logit = np.log(np.stack([p, 1 - p]))[None, :, None, :]
    label = np.array([[[0, 0, 1, 255]]])
    expected = ((0.6 / 2 + 0.3 / 6 + 0.2 / 3) + (0.6 / 2 + 0.3 / 2)) / 2
    value = LovaszSoftmaxLoss()(paddle.to_tensor(logit.astype('float32')),
                                paddle.to_tensor(label)).item()
    assert value == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize('classes', ['present', 'all', [0, 2]])
def test_lovasz_softmax_matches_numpy_over_the_batch(classes):
    rng = np.random.RandomState(0)
    logit = (2 * rng.randn(2, 4, 5, 6)).astype('float32')
    label = rng.randint(0, 3, (2, 5, 6))  # class 3 absent
    label[0, 0, :4] = 255
    value = LovaszSoftmaxLoss(classes=classes)(paddle.to_tensor(logit),
                                               paddle.to_tensor(label))
    expected = np_lovasz_softmax(logit, label, classes)
    assert value.item() == pytest.approx(expected, rel=1e-5)
    # Batch-level: not the mean of the per-image losses.
    per_image = np.mean([np_lovasz_softmax(logit[i:i + 1], label[i:i + 1],
                                           classes) for i in range(2)])
    assert abs(per_image - expected) > 1e-3


@pytest.mark.parametrize('channels', [1, 2])
def test_lovasz_hinge_matches_numpy(channels):
    rng = np.random.RandomState(1)
    logit = (2 * rng.randn(2, channels, 4, 5)).astype('float32')
    label = rng.randint(0, 2, (2, 1, 4, 5))
    label[1, 0, 0, :3] = 255
    if channels == 2:
        # PaddleSeg's conversion: log(p1 + eps / (1 - p1 + eps)).
        p1 = np_softmax(logit.astype('float64'))[:, 1:2]
        score = np.log(p1 + 1e-9 / (1 - p1 + 1e-9))
    else:
        score = logit.astype('float64')
    keep = label.ravel() != 255
    fg, s = label.ravel()[keep], score.ravel()[keep]
    expected = np_lovasz(np.maximum(1 - s * (2 * fg - 1), 0), fg)
    value = LovaszHingeLoss()(paddle.to_tensor(logit),
                              paddle.to_tensor(label)).item()
    assert value == pytest.approx(expected, rel=1e-5)


def test_lovasz_binary_conversion_is_about_log_p1():
    # The operator-precedence quirk copied from PaddleSeg: a confident
    # foreground pixel (p1 = 1 in float32) scores log(1 + 1) = log 2 and a
    # confident background one about log p1, where the logit
    # log(p1 / (1 - p1)) would be +20 and -20.
    from paddleseg.models.losses.lovasz_hinge_loss import \
        binary_channel_to_unary
    logit = paddle.to_tensor([[[[-10.0, 10.0]], [[10.0, -10.0]]]])
    score = binary_channel_to_unary(logit).numpy().ravel()
    assert score[0] == pytest.approx(math.log(2), rel=1e-6)
    p1 = 1 / (1 + math.exp(20))
    assert score[1] == pytest.approx(math.log(p1 + 1e-9 / (1 - p1 + 1e-9)),
                                     rel=1e-5)
    assert score[1] == pytest.approx(-19.60, abs=0.01)


@pytest.mark.parametrize('loss, channels', [(LovaszSoftmaxLoss(), 3),
                                            (LovaszHingeLoss(), 1),
                                            (LovaszHingeLoss(), 2)])
def test_lovasz_ties_do_not_change_the_value(loss, channels):
    # Logits in {-1, 0, 1} make many equal errors; permuting the pixels
    # changes how the ties are ordered, not the value.
    rng = np.random.RandomState(2)
    logit = rng.randint(-1, 2, (1, channels, 1, 40)).astype('float32')
    label = rng.randint(0, min(channels, 2) if channels > 1 else 2,
                        (1, 1, 40))
    values = []
    for seed in range(4):
        perm = np.random.RandomState(seed).permutation(40)
        values.append(loss(paddle.to_tensor(logit[..., perm]),
                           paddle.to_tensor(label[..., perm])).item())
    assert max(values) - min(values) < 1e-6


@pytest.mark.parametrize('loss, channels', [(LovaszSoftmaxLoss(), 3),
                                            (LovaszHingeLoss(), 2)])
def test_lovasz_all_ignored_is_zero_with_a_gradient(loss, channels):
    x = paddle.randn([2, channels, 3, 4])
    x.stop_gradient = False
    value = loss(x, paddle.full([2, 3, 4], 255, 'int64'))
    assert value.shape == [] and value.item() == 0.0
    value.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0.0)


def test_lovasz_gradients_finite_and_bad_arguments():
    x = paddle.to_tensor(np.random.RandomState(3).randn(2, 3, 4, 4).astype(
        'float32') * 50)
    x.stop_gradient = False
    label = paddle.to_tensor(np.random.RandomState(4).randint(0, 3, (2, 4, 4)))
    LovaszSoftmaxLoss()(x, label).backward()
    assert np.isfinite(x.grad.numpy()).all() and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="classes must be 'present'"):
        LovaszSoftmaxLoss(classes='some')
    with pytest.raises(ValueError, match='1 or 2 channels, got 3'):
        LovaszHingeLoss()(x, label)
