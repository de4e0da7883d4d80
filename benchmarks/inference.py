"""Latency of exported CCNet models in Paddle Inference on CPU: the native
criss-cross attention operator against the pure-Paddle path, with oneDNN (the
default) and, for the demo model, without it.

Each case builds the model from a shipped config (random weights; latency
does not depend on them), exports it twice with ``export_model`` (backend
``native`` and ``reference``) and times ``predictor.run()`` on one input.
Ratios are native / reference in the same run (below 1: native is faster).

    python benchmarks/inference.py            # writes results/inference.*
"""

import argparse
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.common import machine, median_time, write_results  # noqa

CASES = [
    # name, config, input (N, C, H, W), oneDNN modes, repeats
    ('demo CCNet-R18 R=2', 'configs/quick_start/ccnet_resnet18_demo.yml',
     (1, 3, 128, 256), (True, False), 10),
    ('demo CCNet-R18 R=2, 512x1024', 'configs/quick_start/'
     'ccnet_resnet18_demo.yml', (1, 3, 512, 1024), (True, False), 5),
    ('CCNet-R50 R=2, 769x769', 'configs/ccnet/'
     'ccnet_resnet50_os8_cityscapes_769x769_60k.yml', (1, 3, 769, 769),
     (True,), 3),
]
BACKENDS = ('native', 'reference')


def _export(config, backend, folder):
    import paddle
    from paddleseg.deploy.export import export_model
    from paddleseg.cvlibs import Config, SegBuilder
    paddle.seed(0)
    cfg = Config(config)
    for section in (cfg.dic['model'], cfg.dic['model'].get('backbone', {})):
        section.pop('pretrained', None)  # latency needs no trained weights
    model = SegBuilder(cfg).model
    export_model(model, folder, [{'type': 'Normalize'}], output_op='argmax',
                 cca_backend=backend)


def _time(folder, x, onednn, repeat):
    from paddleseg.deploy.predictor import DeployConfig, create_predictor
    predictor = create_predictor(DeployConfig(folder), cpu_threads=2,
                                 enable_mkldnn=onednn)
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    handle.reshape(list(x.shape))
    handle.copy_from_cpu(x)
    output = predictor.get_output_handle(predictor.get_output_names()[0])
    seconds = median_time(predictor.run, repeat=repeat, warmup=1)
    return seconds, output.copy_to_cpu()


def run_case(name, config, shape, modes, repeat, tmp):
    x = np.random.RandomState(0).randn(*shape).astype('float32')
    folders = {}
    for backend in BACKENDS:
        folders[backend] = os.path.join(tmp, name.replace(' ', '_') + backend)
        _export(os.path.join(ROOT, config), backend, folders[backend])
    rows = []
    for onednn in modes:
        row = {'case': name, 'input': list(shape), 'onednn': onednn}
        labels = {}
        for backend in BACKENDS:
            row[backend + '_s'], labels[backend] = _time(
                folders[backend], x, onednn, repeat)
        row['native_over_reference'] = row['native_s'] / row['reference_s']
        row['label_agreement'] = float((labels['native'] ==
                                        labels['reference']).mean())
        rows.append(row)
        print(row, flush=True)
    return rows


def markdown(rows, info):
    lines = ['# Exported CCNet in Paddle Inference (CPU)', '',
             'Median latency of `predictor.run()` for one image, 2 threads; '
             'native = the C++ criss-cross attention operator, reference = '
             'the pure-Paddle path (batched matmuls). Ratio = native / '
             'reference in the same run. Machine: {cpu_count} cores, '
             '{platform}, Paddle {paddle}, MKL_DEBUG_CPU_TYPE={mkl}.'
             .format(**info), '',
             '| case | input | oneDNN | native (s) | reference (s) | ratio | '
             'same labels |', '|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append('| {} | {} | {} | {:.3f} | {:.3f} | {:.2f}x | {:.4%} |'
                     .format(r['case'], 'x'.join(map(str, r['input'][2:])),
                             'on' if r['onednn'] else 'off', r['native_s'],
                             r['reference_s'], r['native_over_reference'],
                             r['label_agreement']))
    return '\n'.join(lines) + '\n'



def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--quick', action='store_true',
                   help='Only the first case (a smoke run).')
    args = p.parse_args()
    os.environ.setdefault('OMP_NUM_THREADS', '2')
    import paddleseg  # noqa: F401  (registration, MKL set-up)
    info = dict(machine(), mkl=os.environ.get('MKL_DEBUG_CPU_TYPE', ''))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES[:1] if args.quick else CASES:
            rows += run_case(*case, tmp)
    write_results('inference', {'machine': info, 'rows': rows},
                  markdown(rows, info))


if __name__ == '__main__':
    main()
