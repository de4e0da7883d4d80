"""What letting MKL use its AVX2 kernels on AMD CPUs buys
(``paddleseg.utils.runtime.fast_mkl_on_amd``): SGEMM throughput and the
training-step time of FCN-ResNet18_vd (output stride 8 and 16, batch 4,
128x256), with MKL's default dispatch (``MKL_DEBUG_CPU_TYPE`` set empty, which
MKL ignores and the project leaves alone) against the project default, each in
a fresh process, medians in one run. On an Intel CPU both runs are the same.

    python benchmarks/mkl_amd.py        # writes benchmarks/results/mkl_amd.*
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import (fcn_step_time, machine, median_time, run_child,
                               write_results)


def child():
    import paddle
    import paddleseg  # noqa: F401  (sets MKL_DEBUG_CPU_TYPE on AMD if unset)
    from paddleseg.utils.runtime import cpu_vendor
    m, k, n = 1024, 4608, 1024
    a, b = paddle.rand([m, k]), paddle.rand([k, n])
    sgemm_s = median_time(lambda: paddle.matmul(a, b), repeat=7)
    print(json.dumps({
        'MKL_DEBUG_CPU_TYPE': os.environ.get('MKL_DEBUG_CPU_TYPE'),
        'cpu_vendor': cpu_vendor(), 'sgemm_gflops': 2 * m * k * n / sgemm_s /
        1e9, 'step_os8_s': fcn_step_time(8), 'step_os16_s': fcn_step_time(16)}))


def main():
    base = run_child(__file__, ['--child'], env={'MKL_DEBUG_CPU_TYPE': ''})
    fast = run_child(__file__, ['--child'], env={'MKL_DEBUG_CPU_TYPE': None})
    payload = {'machine': machine(), 'mkl_default_dispatch': base,
               'project_default': fast,
               'speedup': {k: base[k] / fast[k] for k in ('step_os8_s',
                                                          'step_os16_s')}}
    payload['speedup']['sgemm'] = fast['sgemm_gflops'] / base['sgemm_gflops']
    rows = [('SGEMM 1024x4608x1024 (GFLOPS)', 'sgemm_gflops', 'sgemm'),
            ('FCN-R18 os8 training step (s)', 'step_os8_s', 'step_os8_s'),
            ('FCN-R18 os16 training step (s)', 'step_os16_s', 'step_os16_s')]
    md = ('# MKL dispatch on AMD CPUs ({}, {} cores, Paddle {})\n\n'
          'Training steps: batch 4, 128x256, fresh process each.\n\n'
          '| measure | MKL default dispatch | project default (`MKL_DEBUG_'
          'CPU_TYPE={}`) | speed-up |\n|---|---|---|---|\n').format(
              fast['cpu_vendor'], payload['machine']['cpu_count'],
              payload['machine']['paddle'], fast['MKL_DEBUG_CPU_TYPE'])
    for label, key, speed in rows:
        md += '| {} | {:.3f} | {:.3f} | **{:.2f}x** |\n'.format(
            label, base[key], fast[key], payload['speedup'][speed])
    write_results('mkl_amd', payload, md)


if __name__ == '__main__':
    child() if '--child' in sys.argv else main()
