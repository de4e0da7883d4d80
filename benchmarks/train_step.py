"""Training-step time and peak memory of OCRNet-HRNet next to CCNet-R50 on
this CPU, at the demo's size (batch 4, 128x128) and on a Cityscapes crop
(batch 1, 512x1024), in one run.

Each model and size runs in a fresh process (peak memory is per process):
the model is built as its config builds it (from scratch, 19 classes), then
SGD steps on random data with the config's losses (cross entropy on every
training output, coefficients 1 and 0.4). Time is the median of the timed
steps after one warm-up step; peak is the process's max RSS minus its RSS
after building the model, so it counts what training adds (activations,
gradients, optimizer state). Ratios are against CCNet-R50 at the same size,
measured in the same run.

    python benchmarks/train_step.py [--steps 3]
        # writes benchmarks/results/train_step.{json,md}
"""

import argparse
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import machine, rss_mb, run_child, write_results

# name -> (model type, backbone type, backbone kwargs, model kwargs)
MODELS = {
    'CCNet-ResNet50_vd': ('CCNet', 'ResNet50_vd', {'output_stride': 8},
                          {'backbone_indices': [2, 3],
                           'enable_auxiliary_loss': True,
                           'dropout_prob': 0.1, 'recurrence': 2}),
    'OCRNet-HRNet_W18': ('OCRNet', 'HRNet_W18', {},
                         {'backbone_indices': [0]}),
    'OCRNet-HRNet_W18_Small_V1': ('OCRNet', 'HRNet_W18_Small_V1', {},
                                  {'backbone_indices': [0]}),
}
SIZES = {'demo': (4, 128, 128), 'cityscapes': (1, 512, 1024)}
BASELINE = 'CCNet-ResNet50_vd'


def _build(name):
    from paddleseg.cvlibs import manager
    model_type, backbone_type, backbone_kw, model_kw = MODELS[name]
    backbone = manager.BACKBONES[backbone_type](**backbone_kw)
    return manager.MODELS[model_type](num_classes=19, backbone=backbone,
                                      **model_kw)


def child(name, size, steps):
    """One model at one size: print {'step_s', 'extra_peak_mb', ...}."""
    import paddle
    import paddle.nn.functional as F
    import paddleseg  # noqa: F401  (registration, threads, MKL path)
    paddle.seed(0)
    model = _build(name)
    model.train()
    opt = paddle.optimizer.Momentum(0.01, momentum=0.9,
                                    parameters=model.parameters())
    batch, h, w = SIZES[size]
    x = paddle.randn([batch, 3, h, w])
    y = paddle.randint(0, 19, [batch, h, w])
    coefs = [1.0, 0.4]
    base = rss_mb()

    def step():
        outs = model(x)
        loss = sum(c * F.cross_entropy(o, y, axis=1)
                   for c, o in zip(coefs, outs))
        loss.backward()
        opt.step()
        opt.clear_grad()
        return loss.item()

    step()  # warm-up: kernels chosen, optimizer state allocated
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    params = sum(int(p.size) for p in model.parameters())
    print(json.dumps({'model': name, 'size': size, 'step_s':
                      sorted(times)[len(times) // 2], 'times_s': times,
                      'extra_peak_mb': peak - base, 'params': params,
                      'threads': os.environ.get('OMP_NUM_THREADS')}))


def _table(rows, size):
    base = next(r for r in rows if r['model'] == BASELINE and
                r['size'] == size)
    batch, h, w = SIZES[size]
    lines = ['### {} (batch {}, {}x{})\n'.format(size, batch, h, w),
             '| model | params (M) | step (s) | time vs {0} | extra peak '
             'RSS (MB) | memory vs {0} |'.format(BASELINE),
             '|---|---|---|---|---|---|']
    for r in rows:
        if r['size'] != size:
            continue
        lines.append('| {} | {:.1f} | {:.3f} | {:.2f}x | {:.0f} | {:.2f}x |'
                     .format(r['model'], r['params'] / 1e6, r['step_s'],
                             r['step_s'] / base['step_s'],
                             r['extra_peak_mb'],
                             r['extra_peak_mb'] / base['extra_peak_mb']))
    return '\n'.join(lines) + '\n'


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--steps', type=int, default=3,
                   help='timed steps per model and size (after one warm-up)')
    args = p.parse_args()
    rows = [run_child(__file__, ['--child', name, size, str(args.steps)])
            for size in SIZES for name in MODELS]
    info = machine()
    payload = {'machine': info, 'steps': args.steps, 'rows': rows}
    md = ('# Training step, OCRNet-HRNet next to CCNet-R50\n\n'
          'CPU: {}, {} threads; median of {} steps after one warm-up, '
          'each model and size in a fresh process.\n\n'.format(
              info['cpu'], rows[0]['threads'], args.steps) +
          '\n'.join(_table(rows, size) for size in SIZES))
    write_results('train_step', payload, md)


if __name__ == '__main__':
    if '--child' in sys.argv:
        i = sys.argv.index('--child')
        child(sys.argv[i + 1], sys.argv[i + 2], int(sys.argv[i + 3]))
    else:
        main()
