"""Shared pieces of the root scripts: common flags and the error boundary.

:func:`run` calls a script's ``main``; a :class:`SegError` (bad config, data,
checkpoint or CLI input) becomes one line on stderr and exit code 2, with the
traceback only under ``--debug``. Ctrl-C exits with 130.

Every flag of PaddleSeg's scripts is accepted; one this project cannot honour
is added with :func:`add_refused` and, when given, raises a :class:`SegError`
saying why and what to use instead (through the boundary: one line, never
argparse's "unrecognized arguments").
"""

import argparse
import os
import sys

from . import signals
from .errors import SegError

__all__ = ['add_common_args', 'add_inference_args', 'add_output_args',
           'inference_kwargs', 'run', 'parse_size']


# PaddleSeg's flags this project refuses or reads its own way.
__all__ += ['eval_kwargs', 'add_refused', 'add_device_arg', 'add_data_format',
            'add_multilabel', 'add_aug_switch', 'parse_bool']
# Devices PaddleSeg's scripts accept; this project runs on the first two.
DEVICES = ('cpu', 'gpu', 'xpu', 'npu', 'mlu')


def parse_bool(text):
    """``True``/``False`` (also 1/0, yes/no, on/off), as PaddleSeg's
    ``type=eval`` flags take them."""
    if text.lower() in ('1', 'true', 'yes', 'on'):
        return True
    if text.lower() in ('0', 'false', 'no', 'off'):
        return False
    raise argparse.ArgumentTypeError('expected True or False, got {!r}'
                                     .format(text))


class _Refused(argparse.Action):
    """A flag that raises ``SegError(reason)`` when given (with a value
    ``accept`` rejects, when there is an ``accept``)."""

    def __init__(self, option_strings, dest, reason, accept=None, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.reason, self.accept = reason, accept

    def __call__(self, parser, namespace, values, option_string=None):
        if self.accept is not None and self.accept(values):
            setattr(namespace, self.dest, values)
            return
        given = option_string if self.nargs == 0 else '{} {}'.format(
            option_string, ' '.join(map(str, values)) if isinstance(
                values, list) else values)
        raise SegError('{}: {}'.format(given, self.reason))


def add_refused(parser, flag, reason, nargs=0, accept=None, **kwargs):
    """Add PaddleSeg's ``flag``, which this project cannot honour: giving it
    (with a value ``accept(value)`` rejects) stops with ``reason`` (say why
    and what to use instead)."""
    kwargs.setdefault('help', 'Refused here: ' + reason)
    parser.add_argument(flag, action=_Refused, reason=reason, nargs=nargs,
                        accept=accept, **kwargs)


def add_device_arg(parser):
    """``--device`` with PaddleSeg's choices; xpu, npu and mlu are
    refused."""
    add_refused(
        parser, '--device', 'this project runs on cpu or gpu only (PaddleSeg '
        "also builds for Kunlun XPUs, Ascend NPUs and Cambricon MLUs); use "
        '--device cpu or --device gpu.', nargs=None, choices=DEVICES,
        accept=lambda v: v in ('cpu', 'gpu'), default=None,
        help='cpu or gpu (default: gpu when Paddle has CUDA, else cpu).')


def add_data_format(parser):
    """PaddleSeg's ``--data_format``: NCHW; NHWC is refused."""
    add_refused(
        parser, '--data_format', 'no model of this project computes in NHWC '
        '(PaddleSeg offers it for DeepLabV3P only); drop the flag or pass '
        'NCHW.', nargs=None, accept=lambda v: v == 'NCHW', default='NCHW',
        help='NCHW (the layout of every model here; NHWC is refused).')


def add_multilabel(parser):
    """PaddleSeg's ``--use_multilabel``, refused."""
    add_refused(
        parser, '--use_multilabel', 'multi-label segmentation (several '
        'classes per pixel, sigmoid outputs) is not supported: the models, '
        'losses and metrics here give each pixel one class; train a '
        'one-class-per-pixel config instead.')


def add_common_args(parser, config_required=True):
    parser.add_argument('--config', required=config_required,
                        help='The YAML config file.')
    parser.add_argument('--opts', nargs='+', default=[], metavar='KEY=VALUE',
                        help='Config overrides, e.g. model.backbone.'
                        'output_stride=16 train_dataset.dataset_root=data/x.')
    add_device_arg(parser)
    parser.add_argument('--debug', action='store_true',
                        help='Show full tracebacks for errors.')


def add_aug_switch(parser, name='aug_eval', alias='aug_pred'):
    """The test-time augmentation switch ``--NAME`` (``--ALIAS`` also
    works): val.py's is ``--aug_eval``, predict.py's ``--aug_pred``."""
    parser.add_argument('--' + name, '--' + alias, dest='aug_eval',
                        action='store_true', default=None,
                        help='Multi-scale and/or flip augmentation (--{} '
                        'is the same).'.format(alias))


def add_inference_args(parser):
    """Test-time augmentation and sliding-window flags of val/predict (the
    switch, unless the script added its own with :func:`add_aug_switch`)."""
    if not any(a.dest == 'aug_eval' for a in parser._actions):
        add_aug_switch(parser)
    parser.add_argument('--scales', nargs='+', type=float, default=None,
                        help='Scales for augmentation (default 1.0).')
    parser.add_argument('--aug_combine', choices=('logits', 'probs'),
                        default=None,
                        help="How augmented views are combined: logits (their "
                        "mean, PaddleSeg 2.8's way and the default) or probs "
                        '(the sum of their probabilities, PaddleSeg up to '
                        '2.7); test_config.aug_combine sets the default.')
    parser.add_argument('--flip_horizontal', action='store_true', default=None)
    parser.add_argument('--flip_vertical', action='store_true', default=None)
    parser.add_argument('--is_slide', action='store_true', default=None,
                        help='Sliding-window inference (bounds memory).')
    parser.add_argument('--crop_size', nargs=2, type=int, default=None,
                        metavar=('W', 'H'), help='Sliding-window size.')
    parser.add_argument('--stride', nargs=2, type=int, default=None,
                        metavar=('W', 'H'), help='Sliding-window stride.')


def add_output_args(parser, assets_help=None):
    """NVIDIA's output flags, shared by predict.py and infer.py (see
    ``paddleseg.core.writers.output_kinds``)."""
    parser.add_argument(
        '--dump_for_submission', action='store_true',
        help='Also write SAVE_DIR/submit/: Cityscapes label-id PNGs, one per '
        'image, as the benchmark server and cityscapesScripts read them.')
    parser.add_argument(
        '--dump_assets', action='store_true', help=assets_help or (
            "Also write the model's dump_assets maps (attention per scale, "
            'per-scale or per-branch predictions) in SAVE_DIR/assets/ and '
            'SAVE_DIR/index.html showing input, prediction, composite and '
            'assets side by side.'))


def inference_kwargs(args, test_config):
    """Merge CLI flags over the config's ``test_config`` (CLI wins)."""
    kw = dict(test_config or {})
    for key in ('aug_eval', 'scales', 'flip_horizontal', 'flip_vertical',
                'is_slide', 'crop_size', 'stride', 'aug_combine'):
        value = getattr(args, key, None)
        if value is not None:
            kw[key] = value
    kw.pop('auc_roc', None)
    if kw.pop('use_multilabel', False):
        raise SegError('test_config.use_multilabel: multi-label segmentation '
                       'is not supported here (each pixel gets one class); '
                       'remove the key.')
    if kw.get('is_slide') and (not kw.get('crop_size') or not kw.get('stride')):
        raise SegError('Sliding-window inference needs --crop_size W H and '
                       '--stride W H (or test_config.crop_size/stride).')
    if isinstance(kw.get('scales'), list) and len(kw['scales']) == 1:
        kw['scales'] = kw['scales'][0]
    return kw


def eval_kwargs(args, test_config):
    """:func:`inference_kwargs` plus ``auc_roc`` (``--auc_roc`` over
    ``test_config.auc_roc``): the arguments of ``evaluate``."""
    kw = inference_kwargs(args, test_config)
    flag = getattr(args, 'auc_roc', None)
    kw['auc_roc'] = bool((test_config or {}).get('auc_roc', False)
                         if flag is None else flag)
    return kw


def parse_size(text, name):
    """``'512,512'`` or ``'512'`` -> ``(512, 512)``."""
    try:
        parts = [int(p) for p in str(text).replace('x', ',').split(',')]
    except ValueError:
        raise SegError('{} must be W,H integers, got {!r}.'.format(name, text))
    return tuple(parts * 2 if len(parts) == 1 else parts)


def _rank_tag():
    """`` (rank R of W)`` in a distributed run, so the error of the rank that
    failed names it among the launcher's logs; empty otherwise."""
    world = os.environ.get('PADDLE_TRAINERS_NUM', '1')
    if world.isdigit() and int(world) > 1:
        return ' (rank {} of {})'.format(
            os.environ.get('PADDLE_TRAINER_ID', '?'), world)
    return ''


def run(main, argv=None):
    """Run ``main(args)`` behind the user-error boundary; exits the process.

    SIGINT and SIGTERM are handled alike (:mod:`paddleseg.utils.signals`):
    a stop exits with 128 + the signal's number, as a shell reports it.
    """
    debug = '--debug' in (sys.argv if argv is None else argv)
    signals.install()
    try:
        main()
    except SegError as e:
        if debug:
            raise
        print('Error{}: {}'.format(_rank_tag(), e), file=sys.stderr)
        sys.exit(getattr(e, 'exit_code', 2))
    except signals.Stopped as e:
        print('Stopped by {}.'.format(e.name), file=sys.stderr)
        sys.exit(signals.exit_code(e.signum))
    except KeyboardInterrupt:
        print('Interrupted.', file=sys.stderr)
        sys.exit(130)
    sys.exit(0)

