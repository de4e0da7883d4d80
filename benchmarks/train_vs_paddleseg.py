"""Our trainer against PaddleSeg 2.8's on identical work, side by side on
this CPU: the same config (the CCNet demo by default), data, seed, thread
count and MKL path, cost per iteration from the slope between a short and
a long run of each trainer (what a process costs to start, build and save
cancels out), the rounds interleaved so that a shared machine's drift hits
both.

Rows: ``ours`` (``train.py``, criss-cross attention ``auto``, which takes
the pure-Paddle reference when gradients flow), ``ours, native attention``
(``PADDLESEG_CCA_BACKEND=native``: the custom operator, the other choice
``auto`` could make in training), ``PaddleSeg
2.8`` (its ``paddleseg.core.train`` through ``paddleseg28/train_paddleseg.py``,
in the venv ``paddleseg28/setup.sh`` builds: PaddleSeg 2.8.0 from the
package registry with four small fixes for Paddle 3 and numpy 2). Every run
is a fresh process, wall time from start to exit, no evaluation, no loader
workers; startup is the short run's time minus its iterations at the slope.

    bash benchmarks/paddleseg28/setup.sh            # once
    python tools/make_demo_data.py --out data/demo
    python benchmarks/train_vs_paddleseg.py [--rounds 3]
        # writes benchmarks/results/train_vs_paddleseg.{json,md}
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.common import machine, write_results  # noqa: E402

HERE = os.path.join(ROOT, 'benchmarks', 'paddleseg28')
CONFIG = os.path.join(ROOT, 'configs', 'quick_start', 'ccnet_resnet18_demo.yml')
ROWS = ('ours', 'ours, native attention', 'PaddleSeg 2.8')


def _absolute_config(config, folder):
    """The config with its datasets' roots made absolute (PaddleSeg's
    trainer runs outside this repository, so that it imports its own
    package): both trainers read this copy."""
    import yaml
    with open(config) as f:
        cfg = yaml.safe_load(f)
    for key in ('train_dataset', 'val_dataset'):
        root = cfg.get(key, {}).get('dataset_root')
        if root and not os.path.isabs(root):
            cfg[key]['dataset_root'] = os.path.join(ROOT, root)
    path = os.path.join(folder, 'config.yml')
    with open(path, 'w') as f:
        yaml.safe_dump(cfg, f)
    return path


def _command(row, config, iters, save_dir, threads, paddleseg_python):
    """(argv, extra environment, working directory) of one run."""
    common = ['--config', config, '--iters', str(iters), '--save_dir',
              save_dir, '--log_iters', str(iters), '--num_workers', '0',
              '--seed', '0']
    if row == 'PaddleSeg 2.8':
        return ([paddleseg_python, os.path.join(HERE, 'train_paddleseg.py')] +
                common + ['--cpu_threads', str(threads)], {},
                tempfile.gettempdir())
    env = {'PADDLESEG_CCA_BACKEND': 'native'} if 'native' in row else {}
    return [sys.executable, os.path.join(ROOT, 'train.py')] + common, env, ROOT


def run_environment(threads):
    """What every run gets: the thread count and, on AMD CPUs, MKL's AVX2
    path (as our package sets it; PaddleSeg does not)."""
    from paddleseg.utils.runtime import cpu_vendor
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    if cpu_vendor() == 'AuthenticAMD':
        env['MKL_DEBUG_CPU_TYPE'] = '5'
    return env


def timed_run(row, config, iters, base_env, threads, paddleseg_python):
    """Seconds from start to exit of one training run."""
    with tempfile.TemporaryDirectory() as save_dir:
        argv, extra, cwd = _command(row, config, iters, save_dir, threads,
                                    paddleseg_python)
        env = dict(base_env, **extra)
        start = time.perf_counter()
        proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True,
                              text=True)
        seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError('{} ({} iterations) failed:\n{}'.format(
            row, iters, (proc.stdout + proc.stderr)[-3000:]))
    return seconds


def _summary(times, short, long):
    """Per round: slope (s per iteration) and startup (s)."""
    slopes = [(t_long - t_short) / (long - short)
              for t_short, t_long in zip(times[short], times[long])]
    starts = [t_short - short * s
              for t_short, s in zip(times[short], slopes)]
    return {'iter_s': statistics.median(slopes), 'rounds_iter_s': slopes,
            'startup_s': statistics.median(starts), 'rounds_startup_s': starts}


def _round_ratios(table, name):
    """Each round's slope over ``name``'s in the same round: the runs of a
    round are minutes apart, so a drift of the machine's speed over the
    benchmark cancels in the ratio more than in the medians."""
    base = table[name]['rounds_iter_s']
    return {row: [a / b for a, b in zip(r['rounds_iter_s'], base)]
            for row, r in table.items()}


def _markdown(info, table, args):
    name = 'PaddleSeg 2.8' if 'PaddleSeg 2.8' in table else next(iter(table))
    base = table[name]['iter_s']
    ratios = _round_ratios(table, name)
    lines = ['# Training: ours against PaddleSeg 2.8 on the same config\n',
             'CPU: {}, {} threads; `{}`; cost per iteration = slope between '
             '{}- and {}-iteration runs, median of {} interleaved rounds '
             '(each run a fresh process).\n'.format(
                 info['cpu'], args.threads, os.path.relpath(args.config, ROOT),
                 args.short, args.long, args.rounds),
             '| trainer | s / iteration | vs {0} | rounds (s / it) '
             '| per round vs {0} (median) | startup (s) |'.format(name),
             '|---|---|---|---|---|---|']
    for row, r in table.items():
        lines.append('| {} | {:.3f} | {:.2f}x | {} | {} ({:.2f}x) | {:.1f} '
                     '|'.format(
                         row, r['iter_s'], r['iter_s'] / base,
                         ', '.join('{:.3f}'.format(v)
                                   for v in r['rounds_iter_s']),
                         ', '.join('{:.2f}'.format(v) for v in ratios[row]),
                         statistics.median(ratios[row]), r['startup_s']))
    return '\n'.join(lines) + '\n'


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config', default=CONFIG)
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--short', type=int, default=10)
    p.add_argument('--long', type=int, default=40)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--rows', nargs='+', default=list(ROWS), choices=ROWS)
    p.add_argument('--paddleseg_python', default=os.path.join(
        os.environ.get('PSEG28_VENV', os.path.join(HERE, 'venv')), 'bin',
        'python'))
    p.add_argument('--out', default=None, help='Results folder (default '
                   'benchmarks/results).')
    args = p.parse_args()
    if 'PaddleSeg 2.8' in args.rows and not os.path.isfile(
            args.paddleseg_python):
        sys.exit('No PaddleSeg 2.8 environment at {}: run bash '
                 'benchmarks/paddleseg28/setup.sh first (or pass '
                 '--paddleseg_python).'.format(args.paddleseg_python))
    base_env = run_environment(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        config = _absolute_config(args.config, folder)
        times = {row: {args.short: [], args.long: []} for row in args.rows}
        for row in args.rows:  # untimed: builds the native operator once
            timed_run(row, config, 1, base_env, args.threads,  # and warms
                      args.paddleseg_python)  # the file cache
        for i in range(args.rounds):
            order = args.rows if i % 2 == 0 else args.rows[::-1]
            for row in order:
                for iters in (args.short, args.long):
                    times[row][iters].append(timed_run(
                        row, config, iters, base_env, args.threads,
                        args.paddleseg_python))
    table = {row: _summary(times[row], args.short, args.long)
             for row in args.rows}
    info = machine()
    write_results('train_vs_paddleseg', {
        'machine': info, 'config': os.path.relpath(args.config, ROOT),
        'threads': args.threads, 'short': args.short, 'long': args.long,
        'rounds': args.rounds, 'table': table,
        'round_ratios': _round_ratios(table, 'PaddleSeg 2.8' if 'PaddleSeg 2.8'
                                      in table else args.rows[0]),
        'times_s': {
            row: {str(k): v for k, v in t.items()}
            for row, t in times.items()}},
        _markdown(info, table, args), args.out)


if __name__ == '__main__':
    main()
