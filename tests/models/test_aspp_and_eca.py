"""The ASPP module (PaddleSeg's names, with and without the projection) and
the ECA layer (values against numpy, argument errors)."""

import numpy as np
import paddle
import pytest

from paddleseg.models.layers import ASPPModule, ECALayer


def test_eca_equals_numpy():
    paddle.seed(0)
    layer = ECALayer(3)
    w = np.array([0.3, -0.5, 0.8], np.float32)
    layer.conv.weight.set_value(w.reshape(1, 1, 3))
    x = np.random.RandomState(0).randn(2, 6, 3, 5).astype('float32')
    mean = x.mean(axis=(2, 3))                               # (B, C)
    padded = np.pad(mean, ((0, 0), (1, 1)))                 # zero at the ends
    conv = (w[0] * padded[:, :-2] + w[1] * padded[:, 1:-1] +
            w[2] * padded[:, 2:])
    expected = x / (1 + np.exp(-conv))[:, :, None, None]
    np.testing.assert_allclose(layer(paddle.to_tensor(x)).numpy(), expected,
                               rtol=1e-5, atol=1e-6)
    assert [k for k in layer.state_dict()] == ['conv.weight']


@pytest.mark.parametrize('k', [0, 2, -3, 3.0, True])
def test_eca_needs_a_positive_odd_kernel(k):
    with pytest.raises(ValueError, match='k_size must be a positive odd int'):
        ECALayer(k)


def test_aspp_without_projection_concatenates_the_branches():
    aspp = ASPPModule([1, 12, 24, 36], 32, 8, image_pooling=True,
                      projection=False, bias=False)
    assert aspp.out_channels == 40
    names = {k: list(v.shape) for k, v in aspp.state_dict().items()}
    assert names['aspp_blocks.0._conv.weight'] == [8, 32, 1, 1]
    assert names['aspp_blocks.3._conv.weight'] == [8, 32, 3, 3]
    assert aspp.aspp_blocks[3]._conv._dilation == [36, 36]
    assert names['global_avg_pool.1._conv.weight'] == [8, 32, 1, 1]
    assert not any(k.endswith('_conv.bias') for k in names)
    assert not any(k.startswith('conv_bn_relu') for k in names)
    aspp.eval()
    x = paddle.randn([2, 32, 5, 7])
    y = aspp(x)
    assert tuple(y.shape) == (2, 40, 5, 7)
    # The pooled branch is one value per channel, broadcast.
    pooled = aspp.global_avg_pool(x).numpy()
    np.testing.assert_allclose(y[:, 32:].numpy(),
                               np.broadcast_to(pooled, (2, 8, 5, 7)),
                               rtol=1e-6)


def test_aspp_with_projection_has_paddleseg_names():
    aspp = ASPPModule([1, 6], 16, 4, image_pooling=True)
    names = {k: list(v.shape) for k, v in aspp.state_dict().items()}
    assert names['aspp_blocks.1._conv.bias'] == [4]
    assert names['conv_bn_relu._conv.weight'] == [4, 12, 1, 1]
    assert aspp.out_channels == 4
    aspp.eval()
    assert tuple(aspp(paddle.randn([1, 16, 4, 4])).shape) == (1, 4, 4, 4)


@pytest.mark.parametrize('ratios', [[], [0, 12], [1.5]])
def test_aspp_bad_ratios(ratios):
    with pytest.raises(ValueError, match='aspp_ratios must be a non-empty'):
        ASPPModule(ratios, 8, 4)
