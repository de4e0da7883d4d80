"""Predict label maps for images and save palette PNGs and overlays.

    python predict.py --config configs/quick_start/fcn_resnet18_demo.yml \\
        --model_path output/best_model/model.pdparams \\
        --image_path data/demo/leftImg8bit/val --save_dir output/result \\
        [--dump_for_submission] [--dump_assets]
"""

import argparse

from paddleseg.utils import cli


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    cli.add_common_args(p)
    p.add_argument('--model_path', required=True,
                   help='model.pdparams (or a folder holding it).')
    p.add_argument('--image_path', required=True,
                   help='An image, a folder of images, or a .txt list.')
    p.add_argument('--save_dir', default='output/result')
    p.add_argument('--custom_color', nargs='+', type=int, default=None,
                   help='Palette as r g b r g b ... (one triple per class).')
    p.add_argument('--device_id', type=int, default=None,
                   help='The GPU card with --device gpu (ignored on the CPU, '
                   'as in PaddleSeg).')
    cli.add_multilabel(p)
    cli.add_aug_switch(p, 'aug_pred', 'aug_eval')
    cli.add_inference_args(p)
    cli.add_output_args(p)
    return p.parse_args()


def main():
    args = parse_args()
    from paddleseg.core.predict import get_image_list, predict
    from paddleseg.core.script import load_trained_model
    from paddleseg.core.writers import output_kinds

    cfg, builder, model, _ = load_trained_model(args)
    image_list, image_dir = get_image_list(args.image_path)
    kw = cli.inference_kwargs(args, cfg.test_config)
    kw['aug_pred'] = kw.pop('aug_eval', False)
    predict(model, builder.val_transforms, image_list, image_dir=image_dir,
            save_dir=args.save_dir, custom_color=args.custom_color,
            palette=builder.palette,
            kinds=output_kinds(args.dump_for_submission, args.dump_assets),
            **kw)


if __name__ == '__main__':
    cli.run(main)
