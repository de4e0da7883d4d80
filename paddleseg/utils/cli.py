"""Shared pieces of the root scripts: common flags and the error boundary.

:func:`run` calls a script's ``main``; a :class:`SegError` (bad config, data,
checkpoint or CLI input) becomes one line on stderr and exit code 2, with the
traceback only under ``--debug``. Ctrl-C exits with 130.
"""

import argparse
import os
import sys

from . import signals
from .errors import SegError

__all__ = ['add_common_args', 'add_inference_args', 'add_output_args',
           'inference_kwargs', 'run', 'parse_size']


def add_common_args(parser, config_required=True):
    parser.add_argument('--config', required=config_required,
                        help='The YAML config file.')
    parser.add_argument('--opts', nargs='+', default=[], metavar='KEY=VALUE',
                        help='Config overrides, e.g. model.backbone.'
                        'output_stride=16 train_dataset.dataset_root=data/x.')
    parser.add_argument('--device', choices=['cpu', 'gpu'], default=None,
                        help='Default: gpu when Paddle has CUDA, else cpu.')
    parser.add_argument('--debug', action='store_true',
                        help='Show full tracebacks for errors.')


def add_inference_args(parser):
    """Test-time augmentation and sliding-window flags of val/predict."""
    parser.add_argument('--aug_eval', '--aug_pred', dest='aug_eval',
                        action='store_true', default=None,
                        help='Multi-scale and/or flip augmentation.')
    parser.add_argument('--scales', nargs='+', type=float, default=None,
                        help='Scales for augmentation (default 1.0).')
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
                'is_slide', 'crop_size', 'stride'):
        value = getattr(args, key, None)
        if value is not None:
            kw[key] = value
    kw.pop('auc_roc', None)
    if kw.get('is_slide') and (not kw.get('crop_size') or not kw.get('stride')):
        raise SegError('Sliding-window inference needs --crop_size W H and '
                       '--stride W H (or test_config.crop_size/stride).')
    if isinstance(kw.get('scales'), list) and len(kw['scales']) == 1:
        kw['scales'] = kw['scales'][0]
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

