"""Export a trained model for Paddle Inference (model.json, model.pdiparams
and deploy.yaml, or with --for_fd inference.json, inference.pdiparams and
inference.yml for FastDeploy/PaddleX; run either with deploy/python/infer.py).

    python export.py --config configs/quick_start/ccnet_resnet18_demo.yml \\
        --model_path output/demo/best_model/model.pdparams \\
        --save_dir output/demo/inference_model
"""

import argparse
import os

from paddleseg.deploy.export import add_export_args
from paddleseg.utils import cli


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    cli.add_common_args(p)
    p.add_argument('--model_path', required=True,
                   help='model.pdparams (or a folder holding it).')
    p.add_argument('--save_dir', default='output/inference_model')
    add_export_args(p)
    p.add_argument('--cca_backend', choices=['auto', 'native', 'reference'],
                   default='auto',
                   help='Criss-cross attention in the exported graph. auto: '
                   'the one measured faster in Paddle Inference on the device '
                   '(the pure-Paddle path on CPU, which needs no operator '
                   'library where the model is deployed).')
    p.add_argument('--for_fd', action='store_true',
                   help='Name the files as FastDeploy and PaddleX expect: '
                   'inference.json, inference.pdiparams, inference.yml.')
    return p.parse_args()


def main():
    args = parse_args()
    from paddleseg.core.script import load_trained_model
    from paddleseg.deploy.export import export_model, export_settings
    from paddleseg.utils import logger

    cfg, builder, model, device = load_trained_model(args)
    transforms, input_shape, output_op = export_settings(
        cfg, args.input_shape, args.output_op)
    paths = export_model(
        model, args.save_dir, transforms, input_shape=input_shape,
        output_op=output_op, cca_backend=args.cca_backend,
        palette=builder.palette, device=device, for_fd=args.for_fd)
    logger.info('Exported the model to %s (%s, %s, %s)', args.save_dir,
                *(os.path.basename(p) for p in paths.values()))


if __name__ == '__main__':
    cli.run(main)
