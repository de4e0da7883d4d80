"""Evaluate a trained model on the config's validation set.

    python val.py --config configs/quick_start/fcn_resnet18_demo.yml \\
        --model_path output/best_model/model.pdparams
"""

import argparse

from paddleseg.utils import cli


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    cli.add_common_args(p)
    p.add_argument('--model_path', required=True,
                   help='model.pdparams (or a folder holding it).')
    p.add_argument('--num_workers', type=int, default=0)
    p.add_argument('--save_dir', default=None,
                   help='Also write the metrics to SAVE_DIR/metrics.json.')
    p.add_argument('--auc_roc', type=cli.parse_bool, nargs='?', const=True,
                   default=None, help='Also compute the area under the ROC '
                   'curve of the class probabilities (default: '
                   'test_config.auc_roc).')
    cli.add_data_format(p)
    cli.add_multilabel(p)
    cli.add_inference_args(p)
    return p.parse_args()


def main():
    args = parse_args()
    from paddleseg.core.script import load_trained_model
    from paddleseg.core.val import evaluate

    cfg, builder, model, _ = load_trained_model(args)
    if builder.val_dataset is None:
        raise cli.SegError('{} has no val_dataset; add one to evaluate.'.format(
            args.config))
    evaluate(model, builder.val_dataset, num_workers=args.num_workers,
             save_dir=args.save_dir,
             **cli.eval_kwargs(args, cfg.test_config))


if __name__ == '__main__':
    cli.run(main)
