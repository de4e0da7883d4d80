"""Segment images with an exported model in Paddle Inference (PaddleSeg's
deploy/python/infer.py flags). Writes palette PNGs and overlays as predict.py
does: SAVE_DIR/pseudo_color_prediction/<name>.png, SAVE_DIR/added_prediction/;
--dump_for_submission adds Cityscapes label ids in SAVE_DIR/submit/ and
--dump_assets the page SAVE_DIR/index.html.

    python deploy/python/infer.py \\
        --config output/demo/inference_model/deploy.yaml \\
        --image_path data/demo/leftImg8bit/val --save_dir output/infer
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
if ROOT not in sys.path:  # run from a checkout without pip install
    sys.path.insert(0, ROOT)

from paddleseg.utils import cli  # noqa: E402
from paddleseg.deploy.predictor import (  # noqa: E402
    add_predictor_args, check_predictor_args)

TUNE_IMAGES = 10  # images TensorRT's shapes are collected from (PaddleSeg's)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config', required=True,
                   help='deploy.yaml written by export.py (or its folder).')
    p.add_argument('--image_path', required=True,
                   help='An image, a folder of images, or a .txt list.')
    p.add_argument('--batch_size', type=int, default=1)
    p.add_argument('--save_dir', default='output/infer')
    add_predictor_args(p)
    p.add_argument('--benchmark', type=cli.parse_bool, nargs='?', const=True,
                   default=False, help='Print per-stage timings.')
    p.add_argument('--model_name', default='',
                   help='The name the --benchmark report gives the model.')
    p.add_argument('--save_log_path', default=None,
                   help='Also write the run report (settings, per-stage '
                   'timings) to this file.')
    p.add_argument('--with_argmax', action='store_true', help='Accepted: '
                   'the output is always turned into class ids (argmax of '
                   'the logits or probabilities a model exported with '
                   '--output_op none or softmax gives).')
    p.add_argument('--debug', action='store_true',
                   help='Show full tracebacks for errors.')
    cli.add_output_args(p, assets_help=(
        'Also write SAVE_DIR/index.html showing input, prediction and '
        'composite side by side (an exported model has no attention maps: '
        'use predict.py for those).'))
    args = p.parse_args(argv)
    if args.batch_size < 1:
        p.error('--batch_size must be at least 1, got {}'.format(
            args.batch_size))
    check_predictor_args(args)
    return args


def main(argv=None):
    args = parse_args(argv)
    from paddleseg.deploy.predictor import DeployConfig, create_predictor
    from paddleseg.deploy.segmenter import Segmenter
    from paddleseg.core.predict import get_image_list
    from paddleseg.core.writers import output_kinds
    from paddleseg.utils import logger

    import paddle
    device = args.device or ('gpu' if paddle.is_compiled_with_cuda()
                             else 'cpu')
    deploy = DeployConfig(args.config)
    images, image_dir = get_image_list(args.image_path)
    options = dict(device=device, cpu_threads=args.cpu_threads,
                   enable_mkldnn=args.enable_mkldnn, use_trt=args.use_trt,
                   precision=args.precision,
                   min_subgraph_size=args.min_subgraph_size or 3,
                   print_detail=args.print_detail)
    shapes = args.auto_tuned_shape_file or 'auto_tune_tmp.pbtxt'
    if args.enable_auto_tune:  # TensorRT's shapes from the images, first
        tuner = create_predictor(deploy, **dict(
            options, use_trt=False, collect_shapes=shapes))
        Segmenter(tuner, deploy).warm_up(images[:TUNE_IMAGES],
                                         args.batch_size)
        options['tuned_shapes'] = shapes
    segmenter = Segmenter(create_predictor(deploy, **options), deploy)
    start = time.perf_counter()
    written = segmenter.run(images, image_dir, args.save_dir, args.batch_size,
                            kinds=output_kinds(args.dump_for_submission,
                                               args.dump_assets))
    logger.info('Segmented %d images in %.2f s; results are in %s.',
                len(written), time.perf_counter() - start, args.save_dir)
    if args.enable_auto_tune and os.path.isfile(shapes):
        os.remove(shapes)
    report = _report(args, device, segmenter.timings)
    if args.benchmark:
        print(report)
    if args.save_log_path:
        os.makedirs(os.path.dirname(os.path.abspath(args.save_log_path)),
                    exist_ok=True)
        with open(args.save_log_path, 'w') as f:
            f.write(report + '\n')


def _report(args, device, timings):
    """What --benchmark prints and --save_log_path keeps."""
    settings = ('model_name: {} config: {} device: {} cpu_threads: {} '
                'enable_mkldnn: {} use_trt: {} precision: {} batch_size: {}'
                .format(args.model_name or '-', args.config, device,
                        args.cpu_threads or 'default', args.enable_mkldnn,
                        args.use_trt, args.precision, args.batch_size))
    return settings + '\n' + timings.report()


if __name__ == '__main__':
    cli.run(main)
