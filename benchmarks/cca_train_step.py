"""Which criss-cross attention makes a whole CCNet training step faster on
this CPU: the native operator or the pure-Paddle reference, measured in
training (forward, the config's losses, backward, optimizer update), not
the operator alone. The operator alone can win while the step loses
(another OpenMP runtime beside Paddle's, fresh outputs, copies), so the
``auto`` choice for training rests on this table.

The step is ``benchmarks/demo_step.py``'s (the CCNet demo config built as
``train.py`` builds it, a fixed random batch), at two sizes: the demo's
(batch 4, 128x128) and a Cityscapes recipe's crop (batch 1, 769x769; 97x97
features at output stride 8). Each backend and size runs in a fresh process
with ``PADDLESEG_CCA_BACKEND`` set; the rounds alternate the backends so
that drift of a shared machine hits both. Time is the median over the
rounds' medians.

    python -m paddleseg.ops.native     # build the operator first
    python benchmarks/cca_train_step.py [--rounds 2] [--steps 5]
        # writes benchmarks/results/cca_train_step.{json,md}
"""

import argparse
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.common import machine, run_child, write_results  # noqa: E402

CONFIG = 'ccnet_resnet18_demo'
SIZES = {'demo 4x128x128': (4, 128, 128), 'crop 1x769x769': (1, 769, 769)}
BACKENDS = ('native', 'reference')


def measure(size, backend, steps):
    """One fresh process: the step's median time and extra peak memory."""
    batch, h, w = SIZES[size]
    script = os.path.join(ROOT, 'benchmarks', 'demo_step.py')
    return run_child(script, ['--child', CONFIG, str(steps), str(h), str(w),
                              str(batch)],
                     env={'PADDLESEG_CCA_BACKEND': backend})


def _markdown(info, table, rounds, steps):
    lines = ['# CCNet training step: native operator against the reference\n',
             'CPU: {}, {} threads; `{}` step (forward, losses, backward, '
             'update), median of {} steps after two warm-up steps, {} '
             'alternating rounds, each in a fresh process.\n'.format(
                 info['cpu'], os.environ.get('OMP_NUM_THREADS'), CONFIG,
                 steps, rounds),
             '| size | native step (s) | reference step (s) | native / '
             'reference | native / reference peak RSS (MB) | faster |',
             '|---|---|---|---|---|---|']
    for size, r in table.items():
        n, ref = r['native'], r['reference']
        lines.append('| {} | {:.3f} | {:.3f} | {:.2f}x | {:.0f} / {:.0f} | '
                     '{} |'.format(size, n['step_s'], ref['step_s'],
                                   n['step_s'] / ref['step_s'],
                                   n['extra_peak_mb'], ref['extra_peak_mb'],
                                   'native' if n['step_s'] < ref['step_s']
                                   else 'reference'))
    return '\n'.join(lines) + '\n'


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--rounds', type=int, default=2)
    p.add_argument('--steps', type=int, default=5)
    p.add_argument('--sizes', nargs='+', default=list(SIZES), choices=SIZES)
    p.add_argument('--out', default=None, help='Results folder (default '
                   'benchmarks/results).')
    args = p.parse_args()
    os.environ.setdefault('OMP_NUM_THREADS', '2')
    table = {}
    for size in args.sizes:
        runs = {b: [] for b in BACKENDS}
        for i in range(args.rounds):
            order = BACKENDS if i % 2 == 0 else BACKENDS[::-1]
            for backend in order:
                runs[backend].append(measure(size, backend, args.steps))
        table[size] = {b: {
            'step_s': statistics.median(r['step_s'] for r in rs),
            'extra_peak_mb': max(r['extra_peak_mb'] for r in rs),
            'rounds_s': [r['step_s'] for r in rs]} for b, rs in runs.items()}
    info = machine()
    write_results('cca_train_step', {'machine': info, 'rounds': args.rounds,
                                     'steps': args.steps, 'table': table},
                  _markdown(info, table, args.rounds, args.steps), args.out)


if __name__ == '__main__':
    main()
