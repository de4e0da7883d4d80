"""Train a segmentation model from a PaddleSeg-format config.

    python train.py --config configs/quick_start/fcn_resnet18_demo.yml --do_eval
    python -m paddle.distributed.launch --nproc_per_node 2 train.py --config ...
"""

import argparse

from paddleseg.utils import cli


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    cli.add_common_args(p)
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
                   help='Resume although batch_size or the number of '
                   'processes changed (the result then differs from an '
                   'uninterrupted run).')
    p.add_argument('--do_eval', action='store_true')
    p.add_argument('--use_vdl', action='store_true')
    p.add_argument('--log_iters', type=int, default=10)
    p.add_argument('--num_workers', type=int, default=0)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--precision', choices=['fp32', 'fp16', 'bf16'],
                   default='fp32')
    p.add_argument('--amp_level', choices=['O1', 'O2'], default='O1')
    args = p.parse_args()
    for name in ('save_interval', 'keep_checkpoint_max', 'log_iters'):
        if getattr(args, name) <= 0:
            p.error('--{} must be positive, got {}.'.format(
                name, getattr(args, name)))
    if args.num_workers < 0:
        p.error('--num_workers must be >= 0, got {}.'.format(args.num_workers))
    return args


def main():
    args = parse_args()
    from paddleseg.cvlibs import Config, SegBuilder
    from paddleseg.core.run_dir import own_save_dir
    from paddleseg.utils import env, logger

    env.set_device(args.device)
    env.init_distributed()  # first: see its docstring
    cfg = Config(args.config, learning_rate=args.learning_rate,
                 batch_size=args.batch_size, iters=args.iters, opts=args.opts)
    env.set_seed(args.seed)
    builder = SegBuilder(cfg)
    if builder.train_dataset is None:
        raise cli.SegError('{} has no train_dataset; add one.'.format(
            args.config))
    val_dataset = builder.val_dataset if args.do_eval else None
    if args.do_eval and val_dataset is None:
        logger.warning('--do_eval given but %s has no val_dataset; training '
                       'without evaluation.', args.config)
    import paddle
    writer = paddle.distributed.get_rank() == 0
    with own_save_dir(args.save_dir, enabled=writer):  # one run per save_dir
        if writer:
            env.write_run_record(args.save_dir, cfg)
            logger.info('Config %s resolved; run record written to %s.',
                        args.config, args.save_dir)
        _train(args, cfg, builder, val_dataset)


def _train(args, cfg, builder, val_dataset):
    from paddleseg.core.trainer import train
    train(builder.model, builder.train_dataset, builder.optimizer,
          builder.loss, iters=cfg.iters, batch_size=cfg.batch_size,
          save_dir=args.save_dir, val_dataset=val_dataset,
          resume_model=args.resume_model, save_interval=args.save_interval,
          log_iters=args.log_iters, num_workers=args.num_workers,
          use_vdl=args.use_vdl, keep_checkpoint_max=args.keep_checkpoint_max,
          do_eval=val_dataset is not None, precision=args.precision,
          amp_level=args.amp_level, seed=args.seed,
          eval_kwargs=cli.inference_kwargs(None, cfg.test_config),
          lr_scheduler=builder.lr_scheduler,
          allow_resume_changes=args.allow_resume_changes)


if __name__ == '__main__':
    cli.run(main)
