"""Time per training step of every quick start config on this CPU, in one
run, so the README's demo tables (ACFNet next to CCNet and FCN, OCRNet,
MscaleOCRNet) quote times measured side by side rather than the logs of
runs that shared the cores.

Each config runs in a fresh process and is built as ``train.py`` builds it
(``SegBuilder``: model, losses with their coefficients, optimizer and LR
schedule); a step is forward, the config's losses, backward and the
optimizer update on a fixed batch of the config's batch size and crop
(random pixels; labels drawn from the classes with 5% ignore pixels, as the
demo's borders). Time is the median of ``--steps`` steps after two warm-up
steps, peak is the process's max RSS minus its RSS once everything is
built. The data loader is left out: on the demo it costs ~2 ms of a
multi-second step (``reader_cost`` in the training log). Ratios are against
the CCNet demo, measured in the same run.

    python tools/make_demo_data.py --out data/demo   # the configs read it
    python benchmarks/demo_step.py [--steps 5]
        # writes benchmarks/results/demo_step.{json,md}
"""

import argparse
import json
import os
import resource
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.common import machine, rss_mb, run_child, write_results  # noqa: E402,E501

CONFIGS = ('ccnet_resnet18_demo', 'fcn_resnet18_demo', 'acfnet_resnet18_demo',
           'ocrnet_hrnetw18small_demo', 'mscale_ocrnet_hrnetw18small_demo')
BASELINE = 'ccnet_resnet18_demo'
CROP = (128, 128)  # every quick start's RandomPaddingCrop


def _config_path(name):
    return os.path.join(ROOT, 'configs', 'quick_start', name + '.yml')


def child(name, steps, crop=CROP, batch=None):
    """One config: print {'config', 'step_s', 'extra_peak_mb', ...}.
    ``crop`` (H, W) and ``batch`` (default: the config's) let other
    benchmarks time the same step at other sizes."""
    import numpy as np
    import paddle
    import paddleseg  # noqa: F401  (registration, threads, MKL path)
    from paddleseg.core.trainer import compute_losses
    from paddleseg.cvlibs.builder import SegBuilder
    from paddleseg.cvlibs.config import Config
    from paddleseg.ops.onednn_conv import use_onednn_convolutions
    paddle.seed(0)
    cfg = Config(_config_path(name))
    builder = SegBuilder(cfg)
    model, losses, opt = builder.model, builder.loss, builder.optimizer
    model.train()
    use_onednn_convolutions(model)  # as the trainer does on the CPU
    rng = np.random.RandomState(0)
    batch = batch or cfg.batch_size
    crop = tuple(crop)
    x = paddle.to_tensor(rng.randn(batch, 3, *crop).astype('float32'))
    num_classes = builder._dataset_attr('num_classes', 'NUM_CLASSES')
    y = rng.randint(0, num_classes, (batch,) + crop)
    y[rng.rand(*y.shape) < 0.05] = 255
    y = paddle.to_tensor(y.astype('int64'))
    base = rss_mb()

    def step():
        loss = paddle.add_n(compute_losses(model(x), y, losses))
        loss.backward()
        opt.step()
        opt.clear_grad()
        return loss.item()

    for _ in range(2):  # kernels chosen, optimizer state allocated
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({
        'config': name, 'model': cfg.model_cfg['type'], 'batch': batch,
        'crop': list(crop),
        'step_s': sorted(times)[len(times) // 2], 'times_s': times,
        'extra_peak_mb': peak - base,
        'params': sum(int(p.size) for p in model.parameters()),
        'threads': os.environ.get('OMP_NUM_THREADS')}))


def _markdown(info, rows, steps):
    base = next(r for r in rows if r['config'] == BASELINE)
    lines = ['# Training step of the quick start configs\n',
             'CPU: {}, {} threads; batch {} at {}x{}, median of {} steps '
             'after two warm-up steps, each config in a fresh process.\n'
             .format(info['cpu'], rows[0]['threads'], base['batch'], *CROP,
                     steps),
             '| config | model | params (M) | step (s) | time vs CCNet demo '
             '| extra peak RSS (MB) |', '|---|---|---|---|---|---|']
    for r in rows:
        lines.append('| {} | {} | {:.1f} | {:.3f} | {:.2f}x | {:.0f} |'.format(
            r['config'], r['model'], r['params'] / 1e6, r['step_s'],
            r['step_s'] / base['step_s'], r['extra_peak_mb']))
    return '\n'.join(lines) + '\n'


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--steps', type=int, default=5,
                   help='timed steps per config (after two warm-up steps)')
    p.add_argument('--configs', nargs='+', default=list(CONFIGS),
                   choices=CONFIGS, help='quick start configs to time')
    p.add_argument('--out', default=None, help='Results folder (default '
                   'benchmarks/results).')
    args = p.parse_args()
    if BASELINE not in args.configs:
        args.configs.insert(0, BASELINE)
    rows = [run_child(__file__, ['--child', name, str(args.steps)])
            for name in args.configs]
    info = machine()
    write_results('demo_step', {'machine': info, 'steps': args.steps,
                                'rows': rows}, _markdown(info, rows, args.steps),
                  args.out)


if __name__ == '__main__':
    if '--child' in sys.argv:
        i = sys.argv.index('--child')
        # --child NAME STEPS [H W [BATCH]]
        steps, *size = [int(v) for v in sys.argv[i + 2:i + 6]]
        child(sys.argv[i + 1], steps, size[:2] or CROP,
              size[2] if len(size) > 2 else None)
    else:
        main()
