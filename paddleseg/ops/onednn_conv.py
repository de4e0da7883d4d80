"""Training convolutions on the CPU through oneDNN (``conv_csrc``).

In eager mode Paddle 3.3's CPU wheel computes ``conv2d`` and its two
gradients by im2col and MKL GEMM; at the feature-map sizes of a
segmentation backbone in training that runs at a third to a half of the GEMM
rate, and the convolutions are most of a training step. The same wheel ships
oneDNN (``paddle/libs/libdnnl.so.3``, which its inference engine uses), whose
direct convolution computes the forward pass and both gradients 1.2-3.4x
faster at the demo config's shapes (``benchmarks/conv_onednn.py``). This
module builds a small operator on it (once, cached like the criss-cross
attention library, :mod:`.native`) and :func:`use_onednn_convolutions`
routes a model's ``Conv2D`` layers through it while training: same
parameters, same state dict, results equal to Paddle's to float rounding.

Building needs oneDNN's C++ headers of the version the wheel ships, from the
package registry: ``pip install --no-deps onednn-devel==2025.0.0`` (3.6, the
version of Paddle 3.3's oneDNN; ``--no-deps`` because its runtime package
pulls in a SYCL stack this does not use). ``make install`` does it. Without
them, or on GPU, training runs Paddle's own convolution.

Environment: ``PADDLESEG_CONV_BACKEND`` ``auto`` (default: oneDNN when
available, on CPU) or ``paddle`` (never); ``PADDLESEG_ONEDNN_INCLUDE`` a
folder holding ``oneapi/dnnl/dnnl.hpp``.
"""

import os
import sys
import sysconfig
import types

import paddle
import paddle.nn as nn

from paddleseg.ops import native
from paddleseg.utils import logger
from paddleseg.utils.errors import ConfigError

CSRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'conv_csrc')
NAME = 'paddleseg_conv_ops'
OP_NAME = 'paddleseg_conv2d'
WHAT = 'the oneDNN convolution operator'
HEADERS_PACKAGE = 'onednn-devel==2025.0.0'
BACKENDS = ('auto', 'paddle')

_state = {'module': None, 'error': None, 'tried': False}


def include_dir():
    """The folder holding ``oneapi/dnnl/dnnl.hpp``, or None."""
    candidates = [os.environ.get('PADDLESEG_ONEDNN_INCLUDE'),
                  os.path.join(sys.prefix, 'include'),
                  sysconfig.get_paths().get('include')]
    for folder in candidates:
        if folder and os.path.isfile(
                os.path.join(folder, 'oneapi', 'dnnl', 'dnnl.hpp')):
            return folder
    return None


def paddle_onednn():
    """The oneDNN library of the installed Paddle wheel, or None."""
    path = os.path.join(os.path.dirname(paddle.__file__), 'libs',
                        'libdnnl.so.3')
    return path if os.path.isfile(path) else None


def library_path():
    key = native.source_digest(CSRC, (paddle.__version__, sys.version,
                                      include_dir(), paddle_onednn()))
    return os.path.join(native.extension_root(), 'paddleseg_conv_' + key,
                        NAME, NAME + '.so')


def _compile(directory):
    library = paddle_onednn()
    native.compile_library(
        NAME, [os.path.join(CSRC, 'conv_onednn.cc')], directory, WHAT,
        extra_include_paths=[include_dir()], extra_cxx_cflags=['-O2'],
        extra_ldflags=[library, '-Wl,-rpath,' + os.path.dirname(library)])


def _missing():
    """Why the operator cannot be built here, or None."""
    if paddle.is_compiled_with_cuda():
        return 'this Paddle is built with CUDA (the operator is CPU-only)'
    if paddle_onednn() is None:
        return 'this Paddle wheel ships no libdnnl.so.3'
    if include_dir() is None:
        return ('oneDNN\'s headers are not installed (pip install --no-deps '
                '{})'.format(HEADERS_PACKAGE))
    return None


def load():
    """Build if needed and register the operator; its path, or None when it
    is unavailable here (the reason logged once)."""
    if _state['tried']:
        return _state['module']
    _state['tried'] = True
    reason = _missing()
    if reason is None:
        try:
            path = native.build_once(library_path(), _compile, WHAT,
                                     'set PADDLESEG_CONV_BACKEND=paddle')
            native.register_library(path, WHAT)
            _state['module'] = path
        except native.NativeBuildError as e:
            reason = str(e)
    if reason is not None:
        _state['error'] = reason
        logger.info('Training convolutions run on Paddle\'s own kernels: %s.',
                    reason)
    return _state['module']


def conv2d(x, weight, stride, padding, dilation):
    """The operator: ``F.conv2d`` of float32 NCHW ``x`` on the CPU, groups 1,
    symmetric zero ``padding`` (2 ints), no bias."""
    return paddle._C_ops._run_custom_op(OP_NAME, x, weight, list(stride),
                                        list(padding), list(dilation))[0]


def _plain_padding(layer):
    """The layer's padding as [top/bottom, left/right], or None where it is
    not a symmetric explicit zero padding."""
    if layer._padding_mode != 'zeros' or \
            getattr(layer, '_padding_algorithm', 'EXPLICIT') != 'EXPLICIT':
        return None
    padding = layer._updated_padding
    if isinstance(padding, int):
        return [padding, padding]
    padding = list(padding)
    return padding if len(padding) == 2 and all(
        isinstance(p, int) for p in padding) else None


def computes_layer(layer):
    """Whether ``layer`` is a Conv2D the operator can compute."""
    return (type(layer) is nn.Conv2D and layer._groups == 1 and
            layer._data_format == 'NCHW' and
            layer.weight.dtype == paddle.float32 and
            _plain_padding(layer) is not None)


def supports_layer(layer):
    """Whether ``layer`` is routed through the operator: one it computes,
    except 1x1 kernels, which Paddle's kernel already computes as one matrix
    product without im2col (there the operator measured 0.5-0.9x,
    ``benchmarks/conv_onednn.py``)."""
    return computes_layer(layer) and list(layer._kernel_size) != [1, 1]


def _forward(self, x):
    """Conv2D.forward through the operator, where the call allows it."""
    if not (paddle.in_dynamic_mode() and x.dtype == paddle.float32 and
            x.place.is_cpu_place()):
        return nn.Conv2D.forward(self, x)
    y = conv2d(x, self.weight, self._stride, _plain_padding(self),
               self._dilation)
    if self.bias is not None:
        y = y + self.bias.reshape([1, -1, 1, 1])
    return y


def use_onednn_convolutions(model, backend=None):
    """Route ``model``'s supported Conv2D layers through the operator (in
    place; parameters and state dict unchanged). Returns how many."""
    backend = backend or os.environ.get('PADDLESEG_CONV_BACKEND', 'auto')
    if backend not in BACKENDS:
        raise ConfigError('PADDLESEG_CONV_BACKEND={!r} is not one of {}; '
                          'unset it or pick one.'.format(
                              backend, ', '.join(BACKENDS)))
    if backend == 'paddle' or 'cpu' not in paddle.get_device() or \
            load() is None:
        return 0
    layers = [l for l in model.sublayers(include_self=True)
              if supports_layer(l)]
    for layer in layers:
        layer.forward = types.MethodType(_forward, layer)
    logger.info('Training convolutions: %d of the model\'s Conv2D layers '
                'through oneDNN (PADDLESEG_CONV_BACKEND=paddle to turn off).',
                len(layers))
    return len(layers)
