"""Static-graph training (``to_static_training``) against eager training:
the step time of the CCNet demo config (CCNet-ResNet18_vd os8, R = 2,
auxiliary head, batch 4, 128x128 crops, SGD with its schedule), on random
batches of its shape, the two modes interleaved step by step in one process.

Both models are built from the config with the same seed, one trained
eagerly and one with its forward converted (``paddle.jit.to_static``, as
``train.py --to_static_training``). After ``--warmup`` steps each (the first
static one converts and compiles the program: reported apart), they take
``--steps`` steps in turn on the same batches, the order alternating, so
that a load from elsewhere on the (shared) machine falls on both alike; the
ratio is the median of the per-pair ratios. Paddle's generator is seeded
before every step, so both modes draw the same dropout masks and their
losses, recorded too, must agree.

    python benchmarks/static_training.py   # -> benchmarks/results/static_training.*
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import ROOT, machine, write_results  # noqa: E402

CONFIG = os.path.join(ROOT, 'configs', 'quick_start',
                      'ccnet_resnet18_demo.yml')


class Run:
    """One model trained eagerly or through a static forward."""

    def __init__(self, static, seed=0):
        import paddle
        from paddleseg.core.trainer import to_static
        from paddleseg.cvlibs import Config, SegBuilder
        paddle.seed(seed)
        self.cfg = Config(CONFIG)
        self.builder = SegBuilder(self.cfg)
        self.model = self.builder.model
        self.model.train()
        self.forward = to_static(self.model) if static else self.model
        self.times, self.losses = [], []

    def step(self, x, y):
        import paddle
        from paddleseg.core.trainer import compute_losses
        start = time.perf_counter()
        loss = paddle.add_n(compute_losses(self.forward(x), y,
                                           self.builder.loss))
        value = loss.item()
        loss.backward()
        self.builder.optimizer.step()
        self.builder.optimizer.clear_grad()
        self.builder.lr_scheduler.step()
        self.times.append(time.perf_counter() - start)
        self.losses.append(value)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--steps', type=int, default=12)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--out', default=None, help='Results folder.')
    p.add_argument('--report', action='store_true', help='Rewrite the '
                   'markdown from the JSON of the last run in --out.')
    args = p.parse_args()
    if args.report:
        import json
        from benchmarks.common import RESULTS
        with open(os.path.join(args.out or RESULTS,
                               'static_training.json')) as f:
            payload = json.load(f)
        write_results('static_training', payload, report(payload), args.out)
        return
    import numpy as np
    import paddle
    import paddleseg  # noqa: F401  (threads, MKL path, registration)
    runs = {'eager': Run(False), 'static': Run(True)}
    rng = np.random.RandomState(0)
    batch = runs['eager'].cfg.batch_size
    for i in range(args.warmup + args.steps):
        x = paddle.to_tensor(rng.rand(batch, 3, 128, 128).astype('float32'))
        y = paddle.to_tensor(rng.randint(0, 19, (batch, 128, 128)))
        order = ('eager', 'static') if i % 2 == 0 else ('static', 'eager')
        for mode in order:
            paddle.seed(1000 + i)  # the same dropout masks in both modes
            runs[mode].step(x, y)
        print('step {}: eager {:.3f} s, static {:.3f} s'.format(
            i, runs['eager'].times[-1], runs['static'].times[-1]), flush=True)
    timed = {m: r.times[args.warmup:] for m, r in runs.items()}
    ratios = [e / s for e, s in zip(timed['eager'], timed['static'])]
    med = {m: statistics.median(t) for m, t in timed.items()}
    ratio = statistics.median(ratios)
    payload = dict(machine=machine(), config=os.path.relpath(CONFIG, ROOT),
                   threads=os.environ.get('OMP_NUM_THREADS', 'default'),
                   warmup=args.warmup, steps_s=timed,
                   first_step_s={m: r.times[0] for m, r in runs.items()},
                   median_step_s=med, eager_over_static=ratio,
                   eager_over_static_per_step=ratios,
                   losses={m: r.losses for m, r in runs.items()})
    write_results('static_training', payload, report(payload), args.out)


def report(payload):
    """The markdown of a run's results."""
    ratios = payload['eager_over_static_per_step']
    eager, static = payload['losses']['eager'], payload['losses']['static']
    diffs = [abs(a - b) / abs(a) for a, b in zip(eager, static)]
    same = next((i for i, d in enumerate(diffs) if d > 0), len(diffs))
    m = payload['machine']
    return (
        '# Static-graph training against eager: CCNet demo step\n\n'
        '`{}` (CCNet-ResNet18_vd os8, R = 2, batch 4, 128x128), random '
        'batches, the two modes interleaved step by step in one process ({} '
        'warm-up steps each, then {} timed). Machine: {}, {} cores, Paddle '
        '{}.\n\n| mode | first step (s) | median step (s) |\n|---|---|---|\n'
        '| eager | {:.2f} | {:.3f} |\n| static (`to_static_training`) | '
        '{:.2f} | {:.3f} |\n\nEager step time / static step time, median of '
        'the {} pairs: **{:.2f}x** (min {:.2f}, max {:.2f}; above 1 means '
        'static is faster). Losses: identical in the first {} of {} steps, '
        'then apart by at most {:.1e} (relative) as rounding differences '
        'grow through the updates.\n').format(
            payload['config'], payload['warmup'], len(ratios), m['cpu'],
            m['cpu_count'], m['paddle'], payload['first_step_s']['eager'],
            payload['median_step_s']['eager'],
            payload['first_step_s']['static'],
            payload['median_step_s']['static'], len(ratios),
            payload['eager_over_static'], min(ratios), max(ratios), same,
            len(diffs), max(diffs))


if __name__ == '__main__':
    main()
