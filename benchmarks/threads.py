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

from benchmarks.common import machine, median_time, run_child, write_results


def child():
    import paddle
    import paddleseg
    from paddleseg.cvlibs import manager
    paddle.seed(0)
    backbone = manager.BACKBONES['ResNet18_vd'](output_stride=8)
    model = manager.MODELS['FCN'](num_classes=19, backbone=backbone)
    opt = paddle.optimizer.Momentum(0.01, parameters=model.parameters())
    x = paddle.randn([4, 3, 128, 256])
    y = paddle.randint(0, 19, [4, 128, 256])

    def step():
        loss = paddle.nn.functional.cross_entropy(model(x)[0], y, axis=1)
        loss.backward()
        opt.step()
        opt.clear_grad()

    t = median_time(step, repeat=7, warmup=2)
    print(json.dumps({'step_s': t, 'threads': os.environ.get(
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
