"""What RMILoss's factorisation guard costs: forward + backward time of
``RMILoss`` (19 classes, PaddleSeg's defaults: radius 3, 3x3 max pool) on
logits (2, 19, 128, 256), with :func:`floored_cholesky` (the shipped path:
an ``eigvalsh`` per matrix, then Cholesky) against plain
``paddle.linalg.cholesky`` in its place (the references' factorisation, which
raises on a matrix that is numerically not positive definite), medians of
interleaved calls in one process.

    python benchmarks/rmi_loss.py     # writes benchmarks/results/rmi_loss.*
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import machine, write_results

SHAPE = (2, 19, 128, 256)


def interleaved_times(loss, logit, label, factorisations, repeat=21):
    """Median time (s) of a forward + backward of ``loss`` with each of
    ``factorisations`` ({name: fn(matrix, floor)}) standing in for
    ``rmi_loss.floored_cholesky``, alternating between them every call so
    that the load of a shared machine hits both alike."""
    import paddle
    from paddleseg.models.losses import rmi_loss

    shipped = rmi_loss.floored_cholesky
    times = {name: [] for name in factorisations}
    try:
        for i in range(repeat + 2):
            for name, fn in factorisations.items():
                rmi_loss.floored_cholesky = fn
                x = paddle.to_tensor(logit, stop_gradient=False)
                start = time.perf_counter()
                loss(x, label).backward()
                if i >= 2:  # the first two rounds warm up
                    times[name].append(time.perf_counter() - start)
    finally:
        rmi_loss.floored_cholesky = shipped
    return {name: sorted(t)[len(t) // 2] for name, t in times.items()}


def main():
    import numpy as np
    import paddle
    from paddleseg.models.losses import rmi_loss

    rng = np.random.RandomState(0)
    logit = rng.randn(*SHAPE).astype('float32')
    label = paddle.to_tensor(rng.randint(0, SHAPE[1], (SHAPE[0], ) +
                                         SHAPE[2:]))
    loss = rmi_loss.RMILoss(num_classes=SHAPE[1])
    times = interleaved_times(loss, logit, label, {
        'guarded': rmi_loss.floored_cholesky,
        'plain': lambda m, floor: paddle.linalg.cholesky(m)})
    guarded, plain = times['guarded'], times['plain']
    info = machine()
    payload = {'machine': info, 'shape': SHAPE, 'guarded_s': guarded,
               'plain_cholesky_s': plain, 'ratio': guarded / plain,
               'omp_num_threads': os.environ.get('OMP_NUM_THREADS')}
    md = ('# RMILoss factorisation guard: forward + backward, logits {}\n\n'
          '| factorisation | median (ms) |\n|---|---|\n'
          '| plain `paddle.linalg.cholesky` (raises when not PD) | {:.1f} |\n'
          '| `floored_cholesky` (eigvalsh floor, then Cholesky) | {:.1f} |\n\n'
          'Ratio: **{:.2f}x** ({} cores, OMP_NUM_THREADS={}, Paddle {}).\n'
          ).format(SHAPE, 1e3 * plain, 1e3 * guarded, guarded / plain,
                   info['cpu_count'], os.environ.get('OMP_NUM_THREADS'),
                   info['paddle'])
    write_results('rmi_loss', payload, md)


if __name__ == '__main__':
    main()
