"""How much the default CPU thread setting buys: training-step time of
FCN-ResNet18_vd (output stride 8, batch 4, 128x256 crops) with Paddle's own
default (one thread: ``OMP_NUM_THREADS=1``) against this project's default
(every usable core), each in a fresh process, medians in one run.

    python benchmarks/threads.py        # writes benchmarks/results/threads.*
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import fcn_step_time, machine, run_child, write_results


def child():
    step_s = fcn_step_time()
    print(json.dumps({'step_s': step_s, 'threads': os.environ.get(
        'OMP_NUM_THREADS')}))


def main():
    one = run_child(__file__, ['--child'], env={'OMP_NUM_THREADS': '1'})
    default = run_child(__file__, ['--child'], env={'OMP_NUM_THREADS': None})
    ratio = one['step_s'] / default['step_s']
    payload = {'machine': machine(), 'paddle_default_1_thread': one,
               'project_default': default, 'speedup': ratio}
    md = ('# CPU threads: training step, FCN-ResNet18_vd os8, batch 4, '
          '128x256\n\n| setting | threads | median step (s) |\n|---|---|---|\n'
          '| Paddle default (`OMP_NUM_THREADS=1`) | 1 | {:.3f} |\n'
          '| this project\'s default | {} | {:.3f} |\n\nSpeed-up: '
          '**{:.2f}x** ({} cores, Paddle {}).\n').format(
              one['step_s'], default['threads'], default['step_s'], ratio,
              payload['machine']['cpu_count'], payload['machine']['paddle'])
    write_results('threads', payload, md)


if __name__ == '__main__':
    child() if '--child' in sys.argv else main()
