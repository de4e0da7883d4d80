"""Our trainer against PaddleSeg 2.8's on identical work, side by side on
this CPU: the same config (the CCNet demo by default), data, seed, thread
count and MKL path, cost per iteration from the slope between a short and
a long run of each trainer (what a process costs to start, build and save
cancels out), the rounds interleaved so that a shared machine's drift hits
both. And per step: every run times each of its steps with Paddle's step
timer (ours through ``--profiler_options ...;timer_only=true``, PaddleSeg's
through ``train_paddleseg.py --paddle_profiler ...,timer``), and the median
step of the long run after its first ``--short`` steps is the second
figure: a slow minute of a shared machine moves a slope by 15% here, a
median of 30 steps much less.

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
    python benchmarks/train_vs_paddleseg.py [--rounds 5]
        # writes benchmarks/results/train_vs_paddleseg.{json,md}
"""

import argparse
import os
import re
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


def trainer_args(config, iters, save_dir):
    """The flags both trainers' scripts take alike: no evaluation, no loader
    workers, one log line, seed 0."""
    return ['--config', config, '--iters', str(iters), '--save_dir',
            save_dir, '--log_iters', str(iters), '--num_workers', '0',
            '--seed', '0']


def _command(row, config, iters, save_dir, threads, paddleseg_python):
    """(argv, extra environment, working directory, step file) of one run,
    which writes the time of each of its steps after the first to the step
    file with Paddle's step timer (a timestamp per step: the profiler's
    ``timer_only`` mode, which traces nothing)."""
    common = trainer_args(config, iters, save_dir)
    if row == 'PaddleSeg 2.8':
        step_file = os.path.join(save_dir, 'steps.txt')
        return ([paddleseg_python, os.path.join(HERE, 'train_paddleseg.py')] +
                common + ['--cpu_threads', str(threads), '--paddle_profiler',
                          '0,{},{},timer'.format(iters - 1, step_file)], {},
                tempfile.gettempdir(), step_file)
    from paddleseg.core.profiler import SUMMARY_FILE  # where our hook writes
    env = {'PADDLESEG_CCA_BACKEND': 'native'} if 'native' in row else {}
    return ([sys.executable, os.path.join(ROOT, 'train.py')] + common +
            ['--profiler_options', 'batch_range=[1,{}];timer_only=true;'
             'exit_on_finished=false'.format(iters)], env, ROOT,
            os.path.join(save_dir, SUMMARY_FILE))


def step_times(text):
    """The ``batch_cost`` of each line of a step-timer file, in seconds."""
    return [float(v) for v in re.findall(r'batch_cost: ([\d.]+) s', text)]


def run_environment(threads):
    """What every run gets: the thread count and, on AMD CPUs, MKL's AVX2
    path (as our package sets it; PaddleSeg does not)."""
    from paddleseg.utils.runtime import cpu_vendor
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    if cpu_vendor() == 'AuthenticAMD':
        env['MKL_DEBUG_CPU_TYPE'] = '5'
    return env


def timed_run(row, config, iters, base_env, threads, paddleseg_python):
    """Seconds from start to exit of one training run, and the seconds of
    each of its steps after the first."""
    with tempfile.TemporaryDirectory() as save_dir:
        argv, extra, cwd, step_file = _command(
            row, config, iters, save_dir, threads, paddleseg_python)
        env = dict(base_env, **extra)
        start = time.perf_counter()
        proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True,
                              text=True)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError('{} ({} iterations) failed:\n{}'.format(
                row, iters, (proc.stdout + proc.stderr)[-3000:]))
        steps = []
        if os.path.isfile(step_file):
            with open(step_file) as f:
                steps = step_times(f.read())
    if not steps:
        raise RuntimeError('{} ({} iterations) wrote no step times to '
                           '{}.'.format(row, iters, step_file))
    return seconds, steps


def _summary(runs, short, long):
    """Per round: slope (s per iteration), startup (s), and the median step
    of the long run after its first ``short`` steps (s)."""
    slopes = [(t_long - t_short) / (long - short) for (t_short, _), (
        t_long, _) in zip(runs[short], runs[long])]
    starts = [t_short - short * s
              for (t_short, _), s in zip(runs[short], slopes)]
    steps = [statistics.median(per_step[short:])
             for _, per_step in runs[long]]
    return {'iter_s': statistics.median(slopes), 'rounds_iter_s': slopes,
            'startup_s': statistics.median(starts), 'rounds_startup_s': starts,
            'step_s': statistics.median(steps), 'rounds_step_s': steps}


def _round_ratios(table, name, key='rounds_iter_s'):
    """Each round's figure over ``name``'s in the same round: the runs of a
    round are minutes apart, so a drift of the machine's speed over the
    benchmark cancels in the ratio more than in the medians."""
    base = table[name][key]
    return {row: [a / b for a, b in zip(r[key], base)]
            for row, r in table.items()}


def _markdown(info, table, args):
    name = 'PaddleSeg 2.8' if 'PaddleSeg 2.8' in table else next(iter(table))
    lines = ['# Training: ours against PaddleSeg 2.8 on the same config\n',
             'CPU: {}, {} threads; `{}`; {} interleaved rounds, each run a '
             'fresh process. Slope: the cost per iteration between {}- and '
             '{}-iteration runs (wall time, start to exit). Median step: '
             'the median of the {}-iteration run\'s steps after its first '
             '{}, by Paddle\'s step timer (robust to a slow minute of a '
             'shared machine, which the slope is not).\n'.format(
                 info['cpu'], args.threads, os.path.relpath(args.config, ROOT),
                 args.rounds, args.short, args.long, args.long, args.short),
             '| trainer | figure | s / iteration (median) | vs {0} | rounds '
             '| per round vs {0} (median) |'.format(name),
             '|---|---|---|---|---|---|']
    for key, label in (('iter_s', 'slope'), ('step_s', 'median step')):
        ratios = _round_ratios(table, name, 'rounds_' + key)
        for row, r in table.items():
            lines.append('| {} | {} | {:.3f} | {:.2f}x | {} | {} ({:.2f}x) '
                         '|'.format(
                             row, label, r[key], r[key] / table[name][key],
                             ', '.join('{:.3f}'.format(v)
                                       for v in r['rounds_' + key]),
                             ', '.join('{:.2f}'.format(v)
                                       for v in ratios[row]),
                             statistics.median(ratios[row])))
    lines += ['', 'Startup (the short run\'s time less its iterations at '
              'the slope): ' + ', '.join('{} {:.1f} s'.format(
                  row, r['startup_s']) for row, r in table.items()) + '.']
    return '\n'.join(lines) + '\n'


def add_paddleseg_args(parser):
    """``--paddleseg_python`` (PaddleSeg 2.8's venv) and ``--out``, as the
    benchmarks that run PaddleSeg's trainer take them."""
    parser.add_argument('--paddleseg_python', default=os.path.join(
        os.environ.get('PSEG28_VENV', os.path.join(HERE, 'venv')), 'bin',
        'python'))
    parser.add_argument('--out', default=None, help='Results folder '
                        '(default benchmarks/results).')


def check_paddleseg_python(args):
    """Exit with what to run when a PaddleSeg row is asked for and its venv
    is missing."""
    if 'PaddleSeg 2.8' in args.rows and not os.path.isfile(
            args.paddleseg_python):
        sys.exit('No PaddleSeg 2.8 environment at {}: run bash '
                 'benchmarks/paddleseg28/setup.sh first (or pass '
                 '--paddleseg_python).'.format(args.paddleseg_python))


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config', default=CONFIG)
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--short', type=int, default=10)
    p.add_argument('--long', type=int, default=40)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--rows', nargs='+', default=list(ROWS), choices=ROWS)
    add_paddleseg_args(p)
    p.add_argument('--tag', default=None, help='Suffix of the result files '
                   '(train_vs_paddleseg_TAG.*), to keep several runs.')
    args = p.parse_args()
    check_paddleseg_python(args)
    base_env = run_environment(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        config = _absolute_config(args.config, folder)
        runs = {row: {args.short: [], args.long: []} for row in args.rows}
        for row in args.rows:  # untimed: builds the native operator once
            timed_run(row, config, 2, base_env, args.threads,  # and warms
                      args.paddleseg_python)  # the file cache
        for i in range(args.rounds):
            order = args.rows if i % 2 == 0 else args.rows[::-1]
            for row in order:
                for iters in (args.short, args.long):
                    runs[row][iters].append(timed_run(
                        row, config, iters, base_env, args.threads,
                        args.paddleseg_python))
    table = {row: _summary(runs[row], args.short, args.long)
             for row in args.rows}
    name = 'PaddleSeg 2.8' if 'PaddleSeg 2.8' in table else args.rows[0]
    info = machine()
    write_results('train_vs_paddleseg' + ('_' + args.tag if args.tag else
                                          ''), {
        'machine': info, 'config': os.path.relpath(args.config, ROOT),
        'threads': args.threads, 'short': args.short, 'long': args.long,
        'rounds': args.rounds, 'table': table,
        'round_ratios': {key: _round_ratios(table, name, key) for key in (
            'rounds_iter_s', 'rounds_step_s')},
        'runs': {row: {str(k): [{'wall_s': t, 'steps_s': steps}
                                for t, steps in v] for k, v in r.items()}
                 for row, r in runs.items()}},
        _markdown(info, table, args), args.out)


if __name__ == '__main__':
    main()
