"""CPU runtimes of an exported model, side by side: Paddle Inference (oneDNN
fp32, and bf16 where the CPU has it), onnxruntime and OpenVINO (fp32, bf16
where the CPU has it) on the same preprocessed images, median latency per
image and the fraction of pixels labelled as fp32 Paddle Inference labels
them (what ``infer.py --benchmark`` prints, at a deployment size).

The model is exported from ``--config`` (with ``--model_path`` weights: the
label agreement of a trained model is the meaningful one; random weights give
near-ties that lower precisions flip) with the pure-Paddle criss-cross
attention; the demo val images are upscaled to ``--size``. The ONNX
conversion time is reported too (it is paid once per export).

    python benchmarks/inference_backends.py \\
        --config configs/quick_start/ccnet_resnet18_demo.yml \\
        --model_path output/demo/best_model/model.pdparams
"""

import argparse
import glob
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.common import machine, write_results  # noqa: E402


def _export(config, model_path, folder):
    from paddleseg.cvlibs import Config, SegBuilder
    from paddleseg.deploy.export import export_model, export_settings
    from paddleseg.utils.weights import load_entire_model
    cfg = Config(config)
    builder = SegBuilder(cfg)
    model = builder.model
    if model_path:
        load_entire_model(model, model_path)
    model.eval()
    transforms, shape, output_op = export_settings(cfg)
    export_model(model, folder, transforms, input_shape=shape,
                 output_op=output_op, cca_backend='reference',
                 palette=builder.palette)


def _images(data_dir, size, count, folder):
    """The first ``count`` demo val images resized to (H, W) ``size``."""
    import cv2
    paths = sorted(glob.glob(os.path.join(data_dir, 'leftImg8bit', 'val',
                                          '*', '*.png')))[:count]
    if not paths:
        sys.exit('No demo images under {}; run python tools/make_demo_data.py '
                 '--out {} first.'.format(data_dir, data_dir))
    out = []
    for path in paths:
        img = cv2.resize(cv2.imread(path), (size[1], size[0]),
                         interpolation=cv2.INTER_LINEAR)
        dst = os.path.join(folder, os.path.basename(path))
        cv2.imwrite(dst, img)
        out.append(dst)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config',
                   default='configs/quick_start/ccnet_resnet18_demo.yml')
    p.add_argument('--model_path', default=None)
    p.add_argument('--data_dir', default='data/demo')
    p.add_argument('--size', nargs=2, type=int, default=[512, 1024],
                   metavar=('H', 'W'))
    p.add_argument('--images', type=int, default=3)
    p.add_argument('--repeat', type=int, default=3)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--out', default=None, help='Results folder (default '
                   'benchmarks/results).')
    args = p.parse_args()
    os.environ.setdefault('OMP_NUM_THREADS', str(args.threads))
    import paddleseg  # noqa: F401  (registration, thread set-up)
    from paddleseg.deploy import backends
    from paddleseg.deploy.predictor import DeployConfig
    from paddleseg.deploy.segmenter import Segmenter
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = os.path.join(tmp, 'model')
        _export(args.config, args.model_path, model_dir)
        deploy = DeployConfig(model_dir)
        start = time.perf_counter()
        backends.onnx_file_for(deploy)
        convert_s = time.perf_counter() - start
        images = _images(args.data_dir, args.size, args.images, tmp)
        batches = Segmenter(lambda batch: None, deploy).batches(images)
        cases = backends.available_cases()
        rows = backends.compare_backends(deploy, batches, cases, args.threads,
                                         repeat=args.repeat,
                                         enable_mkldnn=True)
    best = backends.pick_fastest(rows)
    info = machine()
    lines = ['# CPU runtimes of one exported model', '',
             '{} ({}), input 1x3x{}x{}, {} demo val images upscaled, {} '
             'threads, median of {} rounds after one warm-up; CPU: {}; bf16 '
             'on this CPU: {}. ONNX conversion: {:.1f} s (once per export).'
             .format(args.config, 'weights ' + args.model_path
                     if args.model_path else 'random weights', args.size[0],
                     args.size[1], len(batches), args.threads, args.repeat,
                     info['cpu'], 'yes' if backends.cpu_has_bf16() else
                     'no (not measured)', convert_s), '',
             '| backend | precision | ms / image | vs fp32 Paddle | labels = '
             'fp32 Paddle |', '|---|---|---|---|---|']
    for r in rows:
        if 'error' in r:
            lines.append('| {} | {} | failed: {} | | |'.format(
                r['backend'], r['precision'], r['error'][:80]))
        else:
            lines.append('| {} | {} | {:.0f} | {:.2f}x | {:.2%} |'.format(
                r['backend'], r['precision'], r['ms'], r['speedup'],
                r['agreement']))
    lines += ['', '`--backend auto` takes {} {} (the fastest with labels '
              '>= {:.1%} equal).'.format(best['backend'], best['precision'],
                                         backends.AGREEMENT_LIMIT)]
    write_results('inference_backends', dict(
        machine=info, config=args.config, model_path=args.model_path,
        size=args.size, images=len(batches), threads=args.threads,
        repeat=args.repeat, onnx_conversion_s=convert_s, rows=rows,
        auto=[best['backend'], best['precision']]), '\n'.join(lines) + '\n',
        args.out)


if __name__ == '__main__':
    main()
