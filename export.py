"""Export a trained model for Paddle Inference (model.json, model.pdiparams
and deploy.yaml; run it with deploy/python/infer.py).

    python export.py --config configs/quick_start/ccnet_resnet18_demo.yml \\
        --model_path output/demo/best_model/model.pdparams \\
        --save_dir output/demo/inference_model
"""

import argparse

from paddleseg.utils import cli

OUTPUT_OPS = ('argmax', 'softmax', 'none')


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    cli.add_common_args(p)
    p.add_argument('--model_path', required=True,
                   help='model.pdparams (or a folder holding it).')
    p.add_argument('--save_dir', default='output/inference_model')
    p.add_argument('--input_shape', nargs=4, type=int, default=None,
                   metavar=('N', 'C', 'H', 'W'),
                   help='Input shape; -1 for any size (default: export.'
                   'input_shape of the config, else -1 3 -1 -1).')
    p.add_argument('--output_op', choices=OUTPUT_OPS, default=None,
                   help='argmax: int32 class ids (default); softmax: '
                   'probabilities; none: logits.')
    p.add_argument('--cca_backend', choices=['auto', 'native', 'reference'],
                   default='auto',
                   help='Criss-cross attention in the exported graph. auto: '
                   'the one measured faster in Paddle Inference on the device '
                   '(the pure-Paddle path on CPU, which needs no operator '
                   'library where the model is deployed).')
    return p.parse_args()


def main():
    args = parse_args()
    from paddleseg.cvlibs import Config, SegBuilder
    from paddleseg.core.export import export_model
    from paddleseg.utils import env, logger
    from paddleseg.utils.checkpoint import load_entire_model

    cfg = Config(args.config, opts=args.opts)
    device = env.set_device(args.device)
    builder = SegBuilder(cfg)
    model = builder.model
    load_entire_model(model, args.model_path)
    export_cfg = cfg.export_config
    transforms = export_cfg.get('transforms') or (
        (cfg.val_dataset_cfg or {}).get('transforms') or [{'type': 'Normalize'}])
    paths = export_model(
        model, args.save_dir, transforms,
        input_shape=args.input_shape or export_cfg.get('input_shape'),
        output_op=args.output_op or export_cfg.get('output_op', 'argmax'),
        cca_backend=args.cca_backend, palette=builder.palette,
        device=device)
    logger.info('Exported the model to %s (%s, %s, %s)', args.save_dir,
                *(p.rsplit('/', 1)[-1] for p in paths.values()))


if __name__ == '__main__':
    cli.run(main)
