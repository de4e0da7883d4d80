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


def _bool(text):
    if text.lower() in ('1', 'true', 'yes', 'on'):
        return True
    if text.lower() in ('0', 'false', 'no', 'off'):
        return False
    raise argparse.ArgumentTypeError('expected True or False, got {!r}'
                                     .format(text))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config', required=True,
                   help='deploy.yaml written by export.py (or its folder).')
    p.add_argument('--image_path', required=True,
                   help='An image, a folder of images, or a .txt list.')
    p.add_argument('--batch_size', type=int, default=1)
    p.add_argument('--save_dir', default='output/infer')
    p.add_argument('--device', choices=['cpu', 'gpu'], default=None,
                   help='Default: gpu when Paddle has CUDA, else cpu.')
    p.add_argument('--cpu_threads', type=int, default=None,
                   help='Default: $OMP_NUM_THREADS, else the core count.')
    p.add_argument('--enable_mkldnn', type=_bool, nargs='?', const=True,
                   default=True, help='oneDNN on CPU (default True; '
                   '--enable_mkldnn False turns it off).')
    p.add_argument('--use_trt', type=_bool, nargs='?', const=True,
                   default=False, help='TensorRT on GPU.')
    p.add_argument('--precision', choices=['fp32', 'fp16', 'int8'],
                   default='fp32')
    p.add_argument('--benchmark', type=_bool, nargs='?', const=True,
                   default=False, help='Print per-stage timings.')
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
    predictor = create_predictor(
        deploy, device=device, cpu_threads=args.cpu_threads,
        enable_mkldnn=args.enable_mkldnn, use_trt=args.use_trt,
        precision=args.precision)
    images, image_dir = get_image_list(args.image_path)
    segmenter = Segmenter(predictor, deploy)
    start = time.perf_counter()
    written = segmenter.run(images, image_dir, args.save_dir, args.batch_size,
                            kinds=output_kinds(args.dump_for_submission,
                                               args.dump_assets))
    logger.info('Segmented %d images in %.2f s; results are in %s.',
                len(written), time.perf_counter() - start, args.save_dir)
    if args.benchmark:
        print(segmenter.timings.report())


if __name__ == '__main__':
    cli.run(main)
