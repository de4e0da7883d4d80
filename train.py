"""Train a segmentation model from a PaddleSeg-format config.

    python train.py --config configs/quick_start/fcn_resnet18_demo.yml --do_eval
    python -m paddle.distributed.launch --nproc_per_node 2 train.py --config ...

Every flag of PaddleSeg's tools/train.py is accepted (see the README's
table); the flags are defined in paddleseg/core/train_cli.py.
"""

import argparse

from paddleseg.utils import cli


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    cli.add_common_args(p)
    from paddleseg.core.train_cli import add_train_args, check_train_args
    add_train_args(p)
    args = p.parse_args()
    check_train_args(args)
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
    if args.early_stop_intervals and val_dataset is None:
        raise cli.SegError('--early_stop_intervals counts evaluations; add '
                           '--do_eval (and a val_dataset to the config).')
    import paddle
    writer = paddle.distributed.get_rank() == 0
    with own_save_dir(args.save_dir, enabled=writer):  # one run per save_dir
        if writer:
            env.write_run_record(args.save_dir, cfg)
            logger.info('Config %s resolved; run record written to %s.',
                        args.config, args.save_dir)
        _train(args, cfg, builder, val_dataset)


def _train(args, cfg, builder, val_dataset):
    from paddleseg.core.train_cli import train_kwargs
    from paddleseg.core.trainer import train
    train(builder.model, builder.train_dataset, builder.optimizer,
          builder.loss, val_dataset=val_dataset,
          do_eval=val_dataset is not None,
          lr_scheduler=builder.lr_scheduler, **train_kwargs(args, cfg))


if __name__ == '__main__':
    cli.run(main)
