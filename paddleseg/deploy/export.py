"""Export a trained model for Paddle Inference: the static program
(``model.json`` in Paddle 3's PIR format, ``model.pdiparams``) and PaddleSeg's
``deploy.yaml`` beside it; with ``for_fd`` (``export.py --for_fd``) the names
FastDeploy and PaddleX look for: ``inference.json``, ``inference.pdiparams``
and ``inference.yml`` (same content).

The exported graph differs from the training graph only in form, never in
what it computes: bilinear resizing and LeakyReLU take forms that Paddle
Inference's oneDNN path runs (see ``paddleseg/models/layers``), and the native
criss-cross attention operator gets a copy of its inputs in front, so oneDNN
hands it plain NCHW data. Which criss-cross attention backend the graph holds
is chosen by
:func:`paddleseg.models.layers.export_cca_backend`.
"""

import os
import shutil
import tempfile

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
import yaml

from paddleseg.models.layers import export_cca_backend, set_cca_backend
from paddleseg.utils import logger
from paddleseg.utils.errors import SegError

__all__ = ['OUTPUT_OPS', 'ExportedNet', 'add_export_args', 'export_model',
           'export_settings', 'deploy_dict', 'export_files']
MODEL_FILE, PARAMS_FILE, DEPLOY_FILE = ('model.json', 'model.pdiparams',
                                        'deploy.yaml')
# The names of an export for FastDeploy/PaddleX (PaddleSeg's --for_fd; with
# Paddle 3 the program is a .json, as PaddleX's own models ship it).
FD_MODEL_FILE, FD_PARAMS_FILE, FD_DEPLOY_FILE = (
    'inference.json', 'inference.pdiparams', 'inference.yml')
# What an exported model outputs (export.py, tools/export_onnx.py).
OUTPUT_OPS = ('argmax', 'softmax', 'none')


def export_files(for_fd=False):
    """``(model, params, deploy)`` file names of an export."""
    if for_fd:
        return FD_MODEL_FILE, FD_PARAMS_FILE, FD_DEPLOY_FILE
    return MODEL_FILE, PARAMS_FILE, DEPLOY_FILE


def add_export_args(parser):
    """``--input_shape`` and ``--output_op`` of the exporters."""
    parser.add_argument('--input_shape', nargs=4, type=int, default=None,
                        metavar=('N', 'C', 'H', 'W'),
                        help='Input shape; -1 for any size (default: '
                        'export.input_shape of the config, else -1 3 -1 -1).')
    parser.add_argument('--output_op', choices=OUTPUT_OPS, default=None,
                        help='argmax: int32 class ids (default); softmax: '
                        'probabilities; none: logits.')


class ExportedNet(nn.Layer):
    """The model's main logits followed by ``output_op``: ``argmax`` gives
    (N, 1, H, W) int32 class ids, ``softmax`` (N, C, H, W) probabilities,
    ``none`` the logits."""

    def __init__(self, model, output_op='argmax'):
        super().__init__()
        if output_op not in OUTPUT_OPS:
            raise SegError(
                'output_op {!r} (--output_op or export.output_op) is not one '
                'of {}.'.format(output_op, ', '.join(OUTPUT_OPS)))
        self.model, self.output_op = model, output_op

    def forward(self, x):
        out = self.model(x)
        logit = out[0] if isinstance(out, (list, tuple)) else out
        if self.output_op == 'argmax':
            return paddle.argmax(logit, axis=1, keepdim=True, dtype='int32')
        if self.output_op == 'softmax':
            return F.softmax(logit, axis=1)
        return logit


def export_settings(cfg, input_shape=None, output_op=None):
    """Transforms, input shape and output op of an export: the arguments
    where given, else the config's ``export`` section, else the validation
    transforms, ``[-1, 3, -1, -1]`` and ``argmax``."""
    export_cfg = cfg.export_config
    transforms = (export_cfg.get('transforms') or
                  (cfg.val_dataset_cfg or {}).get('transforms') or
                  [{'type': 'Normalize'}])
    shape = list(input_shape or export_cfg.get('input_shape') or
                 [-1, 3, -1, -1])
    return transforms, shape, output_op or export_cfg.get('output_op',
                                                          'argmax')


def deploy_dict(transforms, input_shape, output_op, palette=None,
                for_fd=False):
    """The content of ``deploy.yaml`` (``inference.yml`` with ``for_fd``)
    in PaddleSeg's format."""
    model_file, params_file, _ = export_files(for_fd)
    deploy = {
        'model': model_file,
        'params': params_file,
        'transforms': transforms,
        'input_shape': [int(s) for s in input_shape],
        'output_op': output_op,
        'output_dtype': 'int32' if output_op == 'argmax' else 'float32',
    }
    if palette is not None:  # ours: lets infer.py colour like predict.py
        deploy['palette'] = [[int(c) for c in rgb] for rgb in palette]
    return {'Deploy': deploy}


def input_channels(model):
    """The channels the model's first convolution takes (None if it has
    none)."""
    for layer in model.sublayers():
        if isinstance(layer, nn.Conv2D):
            return layer._in_channels
    return None


def _check_input_shape(input_shape, model):
    shape = [-1, 3, -1, -1] if input_shape is None else list(input_shape)
    if len(shape) != 4 or any(not isinstance(s, int) or s == 0 or s < -1
                              for s in shape):
        raise SegError('--input_shape must be four sizes N C H W (-1 for any '
                       'size), got {}.'.format(input_shape))
    channels = input_channels(model)
    if shape[1] == -1 and channels is not None:
        shape[1] = channels
    if channels is not None and shape[1] != channels:
        raise SegError(
            '--input_shape gives {} channels but {} takes {} (its first '
            'convolution); use --input_shape N {} H W.'.format(
                shape[1], type(model).__name__, channels, channels))
    return shape


def export_model(model, save_dir, transforms, input_shape=None,
                 output_op='argmax', cca_backend='auto', palette=None,
                 device='cpu', for_fd=False):
    """Write ``model.json``, ``model.pdiparams`` and ``deploy.yaml`` (with
    ``for_fd``: ``inference.json``, ``inference.pdiparams`` and
    ``inference.yml``).

    The files are written in a temporary folder inside ``save_dir`` and then
    moved in, ``deploy.yaml`` last, so an interrupted export never leaves a
    ``deploy.yaml`` that points at a half-written model.

    Args:
        model (nn.Layer): The model with its weights loaded.
        save_dir (str): Output folder (created).
        transforms (list): The ``val_dataset.transforms`` config entries.
        input_shape (list, optional): N C H W; -1 marks a size known only at
            run time (default ``[-1, 3, -1, -1]``).
        output_op (str): ``argmax``, ``softmax`` or ``none``.
        cca_backend (str): ``auto`` (see :func:`export_cca_backend`),
            ``native`` or ``reference``.
        palette (list, optional): RGB triples recorded for ``infer.py``.
        device (str): The device the model is exported for.
        for_fd (bool): Use the file names FastDeploy and PaddleX expect.

    Returns:
        dict: Paths of ``model``, ``params`` and ``deploy``.
    """
    shape = _check_input_shape(input_shape, model)
    net = ExportedNet(model, output_op)
    backend = (export_cca_backend(device) if cca_backend == 'auto'
               else cca_backend)
    if set_cca_backend(model, backend):
        logger.info('Exporting criss-cross attention with the %s backend',
                    backend)
    net.eval()
    spec = [paddle.static.InputSpec([None if s == -1 else s for s in shape],
                                    'float32', 'x')]
    os.makedirs(save_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.export-', dir=save_dir)
    try:
        names = export_files(for_fd)
        static = paddle.jit.to_static(net, input_spec=spec, full_graph=True)
        paddle.jit.save(static, os.path.join(
            tmp, os.path.splitext(names[0])[0]))
        with open(os.path.join(tmp, names[2]), 'w') as f:
            yaml.safe_dump(deploy_dict(transforms, shape, output_op, palette,
                                       for_fd), f, sort_keys=False,
                           default_flow_style=None)
        paths = {}
        for key, name in zip(('model', 'params', 'deploy'), names):
            paths[key] = os.path.join(save_dir, name)
            os.replace(os.path.join(tmp, name), paths[key])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return paths
