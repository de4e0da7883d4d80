"""Segment images with an exported model in Paddle Inference (PaddleSeg's
deploy/python/infer.py flags). Writes palette PNGs and overlays as predict.py
does: SAVE_DIR/pseudo_color_prediction/<name>.png, SAVE_DIR/added_prediction/;
--dump_for_submission adds Cityscapes label ids in SAVE_DIR/submit/ and
--dump_assets the page SAVE_DIR/index.html. --backend runs the network in
Paddle Inference (default), onnxruntime or OpenVINO (the same ONNX file,
converted once beside deploy.yaml) with the same pre- and post-processing;
--benchmark adds a table of every runtime and precision available here, with
latency and label agreement against fp32 Paddle Inference.

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
COMPARE_IMAGES = 10  # images the --benchmark table is measured on
# Images --backend auto decides on: more than one, since agreement moves
# between images (OpenVINO bf16 on an untrained test model, AMX Xeon: 99.2%
# on one image, 98.8% on the next).
AUTO_IMAGES = 3


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config', required=True,
                   help='deploy.yaml written by export.py (or its folder).')
    p.add_argument('--image_path', required=True,
                   help='An image, a folder of images, or a .txt list.')
    p.add_argument('--batch_size', type=int, default=1)
    p.add_argument('--save_dir', default='output/infer')
    add_predictor_args(p)
    p.add_argument('--backend', default='paddle',
                   choices=['paddle', 'onnxruntime', 'openvino', 'auto'],
                   help='What runs the network: Paddle Inference (default), '
                   'onnxruntime or OpenVINO (CPU; model.onnx beside '
                   'deploy.yaml, converted on first use), or auto: the '
                   'fastest of those available whose labels agree with fp32 '
                   'Paddle on >= 99.5%% of the pixels of the first image '
                   '(measured at start-up).')
    p.add_argument('--benchmark', type=cli.parse_bool, nargs='?', const=True,
                   default=False, help='Print per-stage timings, then (on '
                   'CPU) latency and label agreement of every runtime and '
                   'precision available here on the first 10 images.')
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
    if args.backend not in ('paddle', 'auto') and args.use_trt:
        p.error('--use_trt is for --backend paddle, got --backend {}'.format(
            args.backend))
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
    from paddleseg.deploy import backends
    runner_options = {k: v for k, v in options.items()
                      if k not in ('device', 'precision', 'cpu_threads')}
    backend, precision = args.backend, args.precision
    if backend == 'auto':
        backend, precision = _pick_backend(deploy, images, device, args,
                                           runner_options)
    segmenter = Segmenter(backends.create_runner(
        deploy, backend, device, precision, args.cpu_threads,
        **runner_options), deploy)
    start = time.perf_counter()
    written = segmenter.run(images, image_dir, args.save_dir, args.batch_size,
                            kinds=output_kinds(args.dump_for_submission,
                                               args.dump_assets))
    logger.info('Segmented %d images in %.2f s; results are in %s.',
                len(written), time.perf_counter() - start, args.save_dir)
    if args.enable_auto_tune and os.path.isfile(shapes):
        os.remove(shapes)
    report = _report(args, device, backend, precision, segmenter.timings)
    if args.benchmark:
        print(report)
        if device == 'cpu':
            table = _compare(deploy, segmenter, images, args, runner_options)
            print(table)
            report += '\n' + table
    if args.save_log_path:
        os.makedirs(os.path.dirname(os.path.abspath(args.save_log_path)),
                    exist_ok=True)
        with open(args.save_log_path, 'w') as f:
            f.write(report + '\n')


def _pick_backend(deploy, images, device, args, runner_options):
    """``--backend auto``: (backend, precision), the fastest case whose
    labels on the first AUTO_IMAGES images agree with fp32 Paddle's (fp32
    Paddle itself on the GPU, where nothing else runs)."""
    from paddleseg.deploy import backends
    from paddleseg.deploy.segmenter import Segmenter
    from paddleseg.utils import logger
    if device != 'cpu':
        return 'paddle', args.precision
    batches = Segmenter(lambda batch: None, deploy).batches(
        images[:AUTO_IMAGES], args.batch_size)
    rows = backends.compare_backends(
        deploy, batches, backends.available_cases(), args.cpu_threads,
        repeat=2, **runner_options)
    best = backends.pick_fastest(rows)
    logger.info('--backend auto: %s %s (%.1f ms per image, labels %.2f%% '
                'equal to fp32 Paddle on %d image(s)).', best['backend'],
                best['precision'], best['ms'], 100 * best['agreement'],
                len(images[:AUTO_IMAGES]))
    return best['backend'], best['precision']


def _compare(deploy, segmenter, images, args, runner_options):
    """The --benchmark table: every runtime and precision available here on
    the first COMPARE_IMAGES images."""
    from paddleseg.deploy import backends
    batches = segmenter.batches(images[:COMPARE_IMAGES], args.batch_size)
    rows = backends.compare_backends(
        deploy, batches, backends.available_cases(), args.cpu_threads,
        **runner_options)
    best = backends.pick_fastest(rows)
    return ('Runtimes on {} image(s), {} thread(s); --backend auto would '
            'take {} {}:\n{}'.format(
                len(images[:COMPARE_IMAGES]), args.cpu_threads or 'default',
                best['backend'], best['precision'],
                backends.format_table(rows)))


def _report(args, device, backend, precision, timings):
    """What --benchmark prints and --save_log_path keeps."""
    settings = ('model_name: {} config: {} device: {} backend: {} '
                'cpu_threads: {} enable_mkldnn: {} use_trt: {} precision: {} '
                'batch_size: {}'.format(
                    args.model_name or '-', args.config, device, backend,
                    args.cpu_threads or 'default', args.enable_mkldnn,
                    args.use_trt, precision, args.batch_size))
    return settings + '\n' + timings.report()


if __name__ == '__main__':
    cli.run(main)
