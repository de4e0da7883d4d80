"""Small convolution blocks shared by backbones and heads.

Sub-layer names (``_conv``, ``_batch_norm``, ``conv_bn_relu``, ``conv``) are
PaddleSeg's, so that PaddleSeg checkpoints load with no renaming.

Batch norm is the plain ``nn.BatchNorm2D``: the trainer converts it to
``SyncBatchNorm`` when it runs on more than one GPU (CPU has no
``sync_batch_norm`` kernel).
"""

import paddle
import paddle.nn as nn

__all__ = ['ConvBN', 'ConvBNAct', 'ConvBNReLU', 'ConvBNLeakyReLU', 'AuxLayer',
           'LeakyReLU', 'activation', 'init_conv_bn']


# conv_init -> the initializer of every conv weight (see init_conv_bn).
CONV_INITS = {'normal': lambda: nn.initializer.Normal(0.0, 0.001),
              'kaiming': lambda: nn.initializer.KaimingNormal()}


def init_conv_bn(model, conv_init='normal'):
    """Initialise every conv weight of ``model``, batch norm scale 1 and
    shift 0 (conv biases keep Paddle's default, 0).

    ``conv_init``: ``'normal'`` is PaddleSeg's initialisation of HRNet and
    the OCR heads, normal(0, 0.001); it is what its configs were tuned with.
    ``'kaiming'`` (Kaiming normal, fan-in, ReLU gain) is for training from
    scratch: behind batch norm, weights of std 0.001 make the first steps'
    effective step size very large (the gradient of a scale-invariant layer
    grows as its weights shrink), and the demo's OCRNet trained much faster
    with it (README, OCRNet section). Weights loaded afterwards replace
    either.
    """
    if conv_init not in CONV_INITS:
        raise ValueError(
            "conv_init must be 'normal' (PaddleSeg's normal(0, 0.001)) or "
            "'kaiming' (Kaiming normal, for training from scratch), got "
            "{!r}.".format(conv_init))
    conv = CONV_INITS[conv_init]()
    one, zero = nn.initializer.Constant(1.0), nn.initializer.Constant(0.0)
    for layer in model.sublayers():
        if isinstance(layer, nn.Conv2D):
            conv(layer.weight)
        elif isinstance(layer, nn.BatchNorm2D):
            one(layer.weight)
            zero(layer.bias)


class LeakyReLU(nn.LeakyReLU):
    """``nn.LeakyReLU`` that writes ``maximum(x, slope * x)`` into static
    graphs (the same function for 0 <= slope <= 1).

    Paddle Inference 3.3 on CPU with oneDNN crashes (a segmentation fault
    while its conv+activation fusion builds the fused op) on conv ->
    batch_norm -> leaky_relu, the pattern of CCNet's head; the elementwise
    maximum is not matched by that pass and runs under oneDNN. Eager mode,
    and so training, keeps Paddle's leaky_relu kernel.
    """

    def forward(self, x):
        slope = self._negative_slope
        if paddle.in_dynamic_mode() or not 0 <= slope <= 1:
            return super().forward(x)
        return paddle.maximum(x, x * slope)

_ACTIVATIONS = {
    'relu': nn.ReLU,
    'leakyrelu': LeakyReLU,
    'sigmoid': nn.Sigmoid,
    'tanh': nn.Tanh,
    'gelu': nn.GELU,
    'hardswish': nn.Hardswish,
}


def activation(name):
    """An activation layer by name (``relu``, ``leakyrelu``...); None -> Identity."""
    if name is None:
        return nn.Identity()
    key = name.lower().replace('_', '')
    if key not in _ACTIVATIONS:
        raise ValueError('Unknown activation {!r}; use one of {}.'.format(
            name, ', '.join(sorted(_ACTIVATIONS))))
    return _ACTIVATIONS[key]()


class ConvBNAct(nn.Layer):
    """Conv2D -> BatchNorm2D -> activation ``act_type`` (None: no activation).

    Extra keyword arguments go to ``nn.Conv2D`` (``stride``, ``dilation``,
    ``bias_attr``...).
    """

    def __init__(self, in_channels, out_channels, kernel_size, padding='same',
                 act_type=None, **kwargs):
        super().__init__()
        self._conv = nn.Conv2D(in_channels, out_channels, kernel_size,
                               padding=padding, **kwargs)
        self._batch_norm = nn.BatchNorm2D(out_channels)
        self._act = activation(act_type)

    def forward(self, x):
        return self._act(self._batch_norm(self._conv(x)))


class ConvBN(ConvBNAct):
    """Conv2D -> BatchNorm2D."""

    def __init__(self, in_channels, out_channels, kernel_size, padding='same',
                 **kwargs):
        super().__init__(in_channels, out_channels, kernel_size, padding,
                         act_type=None, **kwargs)


class ConvBNReLU(ConvBNAct):
    """Conv2D -> BatchNorm2D -> ReLU."""

    def __init__(self, in_channels, out_channels, kernel_size, padding='same',
                 **kwargs):
        super().__init__(in_channels, out_channels, kernel_size, padding,
                         act_type='relu', **kwargs)


class ConvBNLeakyReLU(ConvBNAct):
    """Conv2D -> BatchNorm2D -> LeakyReLU (slope 0.01)."""

    def __init__(self, in_channels, out_channels, kernel_size, padding='same',
                 **kwargs):
        super().__init__(in_channels, out_channels, kernel_size, padding,
                         act_type='leakyrelu', **kwargs)


class AuxLayer(nn.Layer):
    """Auxiliary classifier: 3x3 ConvBNReLU -> dropout -> 1x1 conv.

    Args:
        in_channels (int): Input channels.
        inter_channels (int): Channels of the 3x3 conv.
        out_channels (int): Number of classes.
        dropout_prob (float): Dropout before the classifier.
    """

    def __init__(self, in_channels, inter_channels, out_channels,
                 dropout_prob=0.1, **kwargs):
        super().__init__()
        self.conv_bn_relu = ConvBNReLU(in_channels, inter_channels, 3,
                                       padding=1, **kwargs)
        self.dropout = nn.Dropout(p=dropout_prob)
        self.conv = nn.Conv2D(inter_channels, out_channels, 1)

    def forward(self, x):
        return self.conv(self.dropout(self.conv_bn_relu(x)))
