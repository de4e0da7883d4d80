"""The flags of ``train.py``: PaddleSeg's (2.8 and develop) and this
project's, and how they become :func:`paddleseg.core.trainer.train`'s
arguments. Kept here so the root script stays a few lines.

Flags PaddleSeg has and this project cannot honour are refused with one
sentence (:func:`paddleseg.utils.cli.add_refused`).
"""

from paddleseg.utils import cli
from paddleseg.utils.errors import SegError

__all__ = ['add_train_args', 'check_train_args', 'train_kwargs']

_EXPORT_AFTER_TRAINING = (
    "exports the model after training only in PaddleX's uniform-output mode "
    '(uniform_output_enabled), which this project does not have; after '
    'training run export.py (it takes --for_fd, --output_op and '
    '--input_shape).')


def add_train_args(p):
    """Every flag of train.py except the common ones
    (:func:`paddleseg.utils.cli.add_common_args`)."""
    p.add_argument('--iters', type=int, help='Overrides `iters`.')
    p.add_argument('--batch_size', type=int, help='Overrides `batch_size`.')
    p.add_argument('--learning_rate', type=float,
                   help='Overrides `lr_scheduler.learning_rate`.')
    p.add_argument('--save_dir', default='output')
    p.add_argument('--save_interval', type=int, default=1000,
                   help='Checkpoint (and evaluate, with --do_eval) every N.')
    p.add_argument('--keep_checkpoint_max', type=int, default=5)
    p.add_argument('--resume_model', default=None,
                   help='A checkpoint folder, or `auto` for the latest one '
                   'in --save_dir.')
    p.add_argument('--allow_resume_changes', action='store_true',
                   help='Resume although batch_size, --repeats or the number '
                   'of processes changed (the result then differs from an '
                   'uninterrupted run).')
    p.add_argument('--do_eval', action='store_true')
    p.add_argument('--use_vdl', action='store_true')
    p.add_argument('--log_iters', type=int, default=10)
    p.add_argument('--num_workers', type=int, default=0)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--precision', choices=['fp32', 'fp16', 'bf16'],
                   default='fp32')
    p.add_argument('--amp_level', choices=['O1', 'O2'], default='O1')
    p.add_argument('--use_ema', action='store_true',
                   help='Keep an exponential moving average of the weights '
                   '(ema_model.pdparams in each checkpoint; evaluated with '
                   '--do_eval, the best in ema_best_model/).')
    p.add_argument('--early_stop_intervals', type=int, default=None,
                   help='With --do_eval, stop after N evaluations in a row '
                   'without a better mIoU.')
    p.add_argument('--repeats', type=int, default=1,
                   help='Repeat the training set N times in every epoch.')
    p.add_argument('--to_static_training', action='store_true',
                   default=None, help='Run the forward pass as a static '
                   'program (paddle.jit.to_static); also the config key '
                   'to_static_training.')
    p.add_argument('--profiler_options', default=None,
                   help='Profile a window of steps with Paddle\'s profiler, '
                   'e.g. "batch_range=[10,20]"; the summary goes to '
                   'SAVE_DIR/profiler_summary.txt.')
    cli.add_data_format(p)
    cli.add_multilabel(p)
    for flag, kw in (('--for_fd', {}), ('--output_op', {'nargs': None}),
                     ('--input_shape', {'nargs': '+'})):
        cli.add_refused(p, flag, 'train.py ' + flag + ' ' +
                        _EXPORT_AFTER_TRAINING, **kw)


def check_train_args(args):
    """Refuse values no run can use.

    Raises:
        SegError: naming the flag, its value and the valid range.
    """
    for name in ('save_interval', 'keep_checkpoint_max', 'log_iters',
                 'repeats', 'early_stop_intervals'):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise SegError('--{} must be positive, got {}.'.format(name,
                                                                  value))
    if args.num_workers < 0:
        raise SegError('--num_workers must be >= 0, got {}.'.format(
            args.num_workers))


def train_kwargs(args, cfg):
    """The keyword arguments of ``train()`` from the flags and the config
    (``to_static_training`` from the flag or the config key)."""
    return dict(
        iters=cfg.iters, batch_size=cfg.batch_size, save_dir=args.save_dir,
        resume_model=args.resume_model, save_interval=args.save_interval,
        log_iters=args.log_iters, num_workers=args.num_workers,
        use_vdl=args.use_vdl, keep_checkpoint_max=args.keep_checkpoint_max,
        precision=args.precision, amp_level=args.amp_level, seed=args.seed,
        eval_kwargs=cli.eval_kwargs(None, cfg.test_config),
        allow_resume_changes=args.allow_resume_changes,
        use_ema=args.use_ema, early_stop_intervals=args.early_stop_intervals,
        repeats=args.repeats, profiler_options=args.profiler_options,
        to_static_training=bool(args.to_static_training or
                                cfg.to_static_training))
