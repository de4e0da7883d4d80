"""Where a training step's time goes, in our trainer and in PaddleSeg 2.8's,
on the same config (the CCNet demo by default), and how far the step is from
what its arithmetic costs on this CPU.

Both trainers run a window of steps under ``paddle.profiler`` (ours through
``train.py --profiler_options``, PaddleSeg's through
``paddleseg28/train_paddleseg.py --paddle_profiler``, since its own option
drives a profiler Paddle 3 no longer has) and write the same summary. From
it: the time per step of each phase (data, forward, backward, optimizer
update, the rest of the loop) and of the operators that cost most. The
profiler adds its own overhead (a few per cent: the step times here are
above ``train_vs_paddleseg.py``'s), the same for both trainers.

The arithmetic: the model's convolutions and linear layers counted on one
batch of the config's size (2 FLOP per multiply-add; a training step is
taken as three forward passes: the forward, the input gradient and the
weight gradient), against this CPU's measured fp32 matrix rate (a 2048^3
``paddle.matmul``, median of five, at the same thread count). The fraction
printed is that ideal time over the measured step: the share of the step
the arithmetic would take if every FLOP ran at the matrix rate.

    bash benchmarks/paddleseg28/setup.sh            # once, for the PaddleSeg row
    python tools/make_demo_data.py --out data/demo
    python benchmarks/step_profile.py [--window 10 30] [--out DIR]
        # writes benchmarks/results/step_profile.{json,md}
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.common import (machine, median_time,  # noqa: E402
                               write_results)
from benchmarks.train_vs_paddleseg import (  # noqa: E402
    CONFIG, HERE, _absolute_config, add_paddleseg_args,
    check_paddleseg_python, run_environment, trainer_args)

PHASES = ('ProfileStep', 'Dataloader', 'Forward', 'Backward', 'Optimization',
          'Others')
TOP_OPERATORS = 14


def _profile_command(row, config, window, save_dir, threads,
                     paddleseg_python):
    """(argv, working directory) of one profiled run: ``window[1]`` + 1
    iterations, so that both trainers' windows close inside the run."""
    from paddleseg.core.profiler import SUMMARY_FILE  # where our hook writes
    lo, hi = window
    common = trainer_args(config, hi + 1, save_dir)
    summary = os.path.join(save_dir, SUMMARY_FILE)
    if row == 'PaddleSeg 2.8':
        return ([paddleseg_python, os.path.join(HERE, 'train_paddleseg.py')] +
                common + ['--cpu_threads', str(threads), '--paddle_profiler',
                          '{},{},{}'.format(lo, hi, summary)],
                tempfile.gettempdir(), summary)
    return ([sys.executable, os.path.join(ROOT, 'train.py')] + common +
            ['--profiler_options', 'batch_range=[{},{}];exit_on_finished='
             'false;profile_path={}'.format(lo, hi, os.path.join(
                 save_dir, 'trace'))], ROOT, summary)


def profile(row, config, window, env, threads, paddleseg_python):
    """The profiler summary (text) of ``row``'s steps in ``window``."""
    with tempfile.TemporaryDirectory() as save_dir:
        argv, cwd, summary = _profile_command(row, config, window, save_dir,
                                              threads, paddleseg_python)
        proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True,
                              text=True)
        if proc.returncode != 0 or not os.path.isfile(summary):
            raise RuntimeError('{} failed (exit {}):\n{}'.format(
                row, proc.returncode, (proc.stdout + proc.stderr)[-3000:]))
        with open(summary) as f:
            return f.read()


def _section(text, title):
    """The lines of one table of Paddle's profiler summary."""
    start = text.index(title)
    end = text.find('Note:', start)
    return text[start:end if end > 0 else None].splitlines()


def model_summary(text, steps):
    """{phase: ms per step} from the summary's Model Summary table."""
    out = {}
    row = re.compile(r'^\s*({})\s+\S+\s+([\d.]+) /'.format('|'.join(PHASES)))
    for line in _section(text, 'Model Summary'):
        m = row.match(line)
        if m:
            out[m.group(1)] = float(m.group(2)) / steps
    return out


def operator_summary(text, steps):
    """{operator: (ms per step, calls per step)} of the summary's top-level
    operator rows (forward kernels ``x dygraph``, backward nodes
    ``Global_XGradNode``; their nested rows are parts of them)."""
    out = {}
    row = re.compile(r'^(\S.*?)\s{2,}(\d+)\s+([\d.]+) /')
    lines = _section(text, 'Operator Summary')
    for line in lines[lines.index(next(
            l for l in lines if 'All threads merged' in l)) + 1:]:
        m = row.match(line)
        if m:
            out[m.group(1)] = (float(m.group(3)) / steps,
                               int(m.group(2)) / steps)
    return out


def flops_and_rate(config):
    """(forward FLOPs of one training batch, input shape, matrix GFLOP/s),
    measured in this process (a child: ``--arithmetic``)."""
    import numpy as np
    import paddle
    import paddleseg  # noqa: F401  (threads, MKL path: as train.py)
    from paddleseg.cvlibs import Config, SegBuilder
    cfg = Config(config)
    builder = SegBuilder(cfg)
    img = builder.train_dataset[0]['img']
    shape = [cfg.batch_size] + list(np.asarray(img).shape)
    model = builder.model
    model.train()
    total = [0]

    def count(layer, inputs, output):
        per_output = 2 * layer.weight.shape[1] if isinstance(
            layer, paddle.nn.Conv2D) else 2 * layer.weight.shape[0]
        if isinstance(layer, paddle.nn.Conv2D):
            per_output *= int(np.prod(layer.weight.shape[2:]))
        total[0] += per_output * int(np.prod(output.shape))

    for layer in model.sublayers():
        if isinstance(layer, (paddle.nn.Conv2D, paddle.nn.Linear)):
            layer.register_forward_post_hook(count)
    with paddle.no_grad():
        model(paddle.zeros(shape))
    n = 2048
    a, b = paddle.rand([n, n]), paddle.rand([n, n])
    seconds = median_time(lambda: paddle.matmul(a, b).numpy(), repeat=5,
                          warmup=2)
    return total[0], shape, 2 * n ** 3 / seconds / 1e9


def _markdown(info, args, phases, ops, arithmetic):
    rows = list(phases)
    lines = ['# Training step profile: ours and PaddleSeg 2.8\n',
             'CPU: {}, {} threads; `{}`; steps {}-{} of one run each under '
             '`paddle.profiler` (ms per step; the profiler\'s overhead '
             'included, alike for both).\n'.format(
                 info['cpu'], args.threads, os.path.relpath(args.config, ROOT),
                 args.window[0], args.window[1] - 1),
             '| phase | ' + ' | '.join(rows) + (' | ours / PaddleSeg |'
                                               if len(rows) == 2 else ' |'),
             '|---' * (len(rows) + 1 + (len(rows) == 2)) + '|']
    for phase in PHASES:
        values = [phases[r].get(phase, 0.0) for r in rows]
        cells = ['{:.1f}'.format(v) for v in values]
        if len(rows) == 2:
            cells.append('{:.2f}x'.format(values[0] / values[1])
                         if values[1] else '-')
        name = 'step (all)' if phase == 'ProfileStep' else phase
        lines.append('| {} | {} |'.format(name, ' | '.join(cells)))
    names = []
    for r in rows:
        top = sorted(ops[r].items(), key=lambda kv: -kv[1][0])
        names += [k for k, _ in top[:TOP_OPERATORS] if k not in names]
    lines += ['', 'Operators (ms per step, calls per step in brackets), the '
              'costliest {} of each trainer:\n'.format(TOP_OPERATORS),
              '| operator | ' + ' | '.join(rows) + ' |',
              '|---' * (len(rows) + 1) + '|']
    for name in sorted(names, key=lambda k: -ops[rows[0]].get(k, (0, 0))[0]):
        cells = ['{:.1f} ({:g})'.format(*ops[r][name]) if name in ops[r]
                 else '-' for r in rows]
        lines.append('| {} | {} |'.format(name, ' | '.join(cells)))
    flops, shape, rate = (arithmetic[k] for k in ('forward_flops', 'shape',
                                                  'matmul_gflops'))
    ideal_ms = 3 * flops / (rate * 1e9) * 1e3
    lines += ['', 'Arithmetic: the convolutions and linear layers of one '
              'forward pass on {} are {:.1f} GFLOP; a training step, taken '
              'as three of them, {:.1f} GFLOP. At the measured fp32 matrix '
              'rate of {:.0f} GFLOP/s ({} threads) that is {:.0f} ms, so '
              'the arithmetic would fill {} of the measured step.'.format(
                  shape, flops / 1e9, 3 * flops / 1e9, rate, args.threads,
                  ideal_ms, ', '.join(
                      '{:.0%} of {}\'s ({:.0f} ms)'.format(
                          ideal_ms / phases[r]['ProfileStep'], r,
                          phases[r]['ProfileStep']) for r in rows))]
    return '\n'.join(lines) + '\n'


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config', default=CONFIG)
    p.add_argument('--window', type=int, nargs=2, default=[10, 30],
                   metavar=('FIRST', 'END'))
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--rows', nargs='+', default=['ours', 'PaddleSeg 2.8'],
                   choices=['ours', 'PaddleSeg 2.8'])
    add_paddleseg_args(p)
    p.add_argument('--arithmetic', action='store_true',
                   help=argparse.SUPPRESS)  # the child's mode
    args = p.parse_args()
    if args.arithmetic:
        flops, shape, rate = flops_and_rate(args.config)
        print(json.dumps({'forward_flops': flops, 'shape': shape,
                          'matmul_gflops': rate}))
        return
    check_paddleseg_python(args)
    env = run_environment(args.threads)
    steps = args.window[1] - args.window[0]
    texts = {}
    with tempfile.TemporaryDirectory() as folder:
        config = _absolute_config(args.config, folder)
        for row in args.rows:
            texts[row] = profile(row, config, args.window, env, args.threads,
                                 args.paddleseg_python)
        child = subprocess.run(
            [sys.executable, os.path.abspath(__file__), '--arithmetic',
             '--config', config], env=env, cwd=ROOT, capture_output=True,
            text=True, check=True)
    arithmetic = json.loads(child.stdout.strip().splitlines()[-1])
    phases = {r: model_summary(t, steps) for r, t in texts.items()}
    ops = {r: operator_summary(t, steps) for r, t in texts.items()}
    info = machine()
    write_results('step_profile', {
        'machine': info, 'config': os.path.relpath(args.config, ROOT),
        'threads': args.threads, 'window': args.window,
        'phases_ms_per_step': phases,
        'operators_ms_and_calls_per_step': ops, 'arithmetic': arithmetic},
        _markdown(info, args, phases, ops, arithmetic), args.out)


if __name__ == '__main__':
    main()
