"""What hierarchical multi-scale attention costs on this CPU: training
memory and time of MscaleOCRNet's two-scale step against training the same
network on three scales explicitly, and inference time per scale list.

Training, one SGD step (forward, backward, update) on one image:

- ``hierarchical``: the model's own training forward, scales 0.5 and 1.0
  (``[joint_aux, joint_pred, pred_0.5x, pred_1.0x]``, cross entropy on each
  with PaddleSeg's coefficients 0.4, 1, 0.05, 0.05);
- ``explicit 0.5/1.0/2.0``: the same network, the attention combination over
  0.5, 1.0 and 2.0 run with gradients, cross entropy on the combined
  prediction (coef 1) and on each scale's own prediction (0.05 each): what
  training with all inference scales would be.

Inference: the evaluation forward (no gradients) with ``mscale`` [1.0],
[0.5, 1.0] and [0.5, 1.0, 2.0].

The network is MscaleOCRNet on HRNet_W18_Small_V1 with narrower OCR and
attention heads than PaddleSeg's (``--ocr_channels``), random weights (time
and memory do not depend on them), 19 classes. Each case runs in a fresh
process: its peak RSS increase is the process's max RSS minus its RSS once
the model, optimizer and input exist; times are medians of ``--repeat``
steps after ``--warmup``. Ratios are against the first case of each table,
measured in the same run.

    python benchmarks/mscale_attention.py            # 256x512: a few minutes
    python benchmarks/mscale_attention.py --quick    # a smoke run, 64x128

The full run writes benchmarks/results/mscale_attention.{json,md}; the
smoke run only prints.
"""

import argparse
import json
import os
import resource
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.common import (machine, median_time, run_child,  # noqa: E402
                               rss_mb, write_results)

TRAIN_CASES = ('hierarchical', 'explicit 0.5/1.0/2.0')
INFER_CASES = ([1.0], [0.5, 1.0], [0.5, 1.0, 2.0])
EXPLICIT_SCALES = (0.5, 1.0, 2.0)
NUM_CLASSES = 19


def build(channels):
    import paddle
    import paddleseg  # noqa: F401  (registration, thread set-up)
    from paddleseg.cvlibs import manager
    paddle.seed(0)
    return manager.MODELS['MscaleOCRNet'](
        num_classes=NUM_CLASSES,
        backbone=manager.BACKBONES['HRNet_W18_Small_V1'](),
        ocr_mid_channels=channels, ocr_key_channels=channels // 2,
        attention_channels=channels // 2)


def explicit_logits(model, x):
    """(combined, [each scale's prediction]) at the input size, with
    gradients, over EXPLICIT_SCALES."""
    from paddleseg.models.layers import spatial_size
    per_scale = {}
    joint = model._nscale(x, EXPLICIT_SCALES, per_scale)
    size = spatial_size(x)
    return joint, [model._resize(v, size) for k, v in per_scale.items()
                   if k.startswith('pred_')]


def train_step_fn(model, case, x, label):
    import paddle
    import paddle.nn.functional as F
    opt = paddle.optimizer.Momentum(0.001, parameters=model.parameters())

    def ce(logit):
        return F.cross_entropy(logit, label, axis=1, ignore_index=255)

    def step():
        if case == 'hierarchical':
            outs = model(x)
            loss = paddle.add_n([c * ce(o) for c, o in zip(
                (0.4, 1.0, 0.05, 0.05), outs)])
        else:
            joint, scales = explicit_logits(model, x)
            loss = paddle.add_n([ce(joint)] + [0.05 * ce(s) for s in scales])
        loss.backward()
        opt.step()
        opt.clear_grad()

    return step


def child(kind, case, args):
    """One case in this process; prints its JSON result."""
    import numpy as np
    import paddle
    model = build(args.ocr_channels)
    h, w = args.size
    rng = np.random.RandomState(0)
    x = paddle.to_tensor(rng.randn(1, 3, h, w).astype('float32'))
    if kind == 'train':
        model.train()
        label = paddle.to_tensor(rng.randint(0, NUM_CLASSES, (1, h, w)))
        fn = train_step_fn(model, case, x, label)
    else:
        model.eval()
        model.mscale = json.loads(case)

        def fn():
            with paddle.no_grad():
                model(x)[0].numpy()
    base = rss_mb()
    seconds = median_time(fn, repeat=args.repeat, warmup=args.warmup)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({'kind': kind, 'case': case, 'seconds': seconds,
                      'extra_peak_mb': peak - base}))


def _forwarded(args):
    return ['--size', str(args.size[0]), str(args.size[1]), '--repeat',
            str(args.repeat), '--warmup', str(args.warmup), '--ocr_channels',
            str(args.ocr_channels)]


def markdown(train, infer, info, args):
    lines = ['# Hierarchical multi-scale attention (MscaleOCRNet) on CPU', '',
             'MscaleOCRNet on HRNet_W18_Small_V1 (OCR {} channels), 19 '
             'classes, one {}x{} image, random weights; each case in a fresh '
             'process; medians of {} steps. Machine: {}, {} cores, {}, Paddle '
             '{}, OMP_NUM_THREADS={}.'.format(
                 args.ocr_channels, args.size[0], args.size[1], args.repeat,
                 info['cpu'], info['cpu_count'], info['platform'],
                 info['paddle'], info['omp_num_threads']), '',
             '| training step | time (s) | x hierarchical | extra peak RSS '
             '(MB) | x hierarchical |', '|---|---|---|---|---|']
    for r in train:
        lines.append('| {} | {:.3f} | {:.2f}x | {:.0f} | {:.2f}x |'.format(
            r['case'], r['seconds'], r['time_ratio'], r['extra_peak_mb'],
            r['memory_ratio']))
    lines += ['', '| inference scales | time (s) | x [1.0] | extra peak RSS '
              '(MB) |', '|---|---|---|---|']
    for r in infer:
        lines.append('| {} | {:.3f} | {:.2f}x | {:.0f} |'.format(
            r['case'], r['seconds'], r['time_ratio'], r['extra_peak_mb']))
    return '\n'.join(lines) + '\n'


def main(args):
    os.environ.setdefault('OMP_NUM_THREADS', '2')
    info = dict(machine(), omp_num_threads=os.environ['OMP_NUM_THREADS'])
    train = [run_child(__file__, ['--child', 'train', case] +
                       _forwarded(args)) for case in TRAIN_CASES]
    infer = [run_child(__file__, ['--child', 'infer', json.dumps(scales)] +
                       _forwarded(args)) for scales in INFER_CASES]
    for rows in (train, infer):
        for r in rows:
            r['time_ratio'] = r['seconds'] / rows[0]['seconds']
            r['memory_ratio'] = r['extra_peak_mb'] / rows[0]['extra_peak_mb']
    payload = {'machine': info, 'size': list(args.size),
               'ocr_channels': args.ocr_channels, 'repeat': args.repeat,
               'train': train, 'infer': infer}
    if args.quick:  # a smoke run: its numbers are not results
        print(json.dumps(payload))
        print(markdown(train, infer, info, args))
    else:
        write_results('mscale_attention', payload,
                      markdown(train, infer, info, args))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--child', nargs=2, metavar=('KIND', 'CASE'),
                   help=argparse.SUPPRESS)
    p.add_argument('--size', nargs=2, type=int, default=[256, 512],
                   metavar=('H', 'W'))
    p.add_argument('--repeat', type=int, default=5)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--ocr_channels', type=int, default=128,
                   help='OCR representation channels (PaddleSeg: 512).')
    p.add_argument('--quick', action='store_true',
                   help='A smoke run: 64x128, 1 step, 32 OCR channels; '
                   'prints, writes nothing.')
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.repeat, args.warmup, args.ocr_channels = \
            [64, 128], 1, 0, 32
    return args


if __name__ == '__main__':
    ARGS = parse_args(sys.argv[1:])
    if ARGS.child:
        child(ARGS.child[0], ARGS.child[1], ARGS)
    else:
        main(ARGS)
