"""The network of an exported model run by one of three runtimes, behind one
call: ``runner(batch) -> output`` with ``batch`` an (N, 3, H, W) float32
array and the output what the exported program returns (class ids, or
scores with ``--output_op softmax|none``).

- ``paddle``: Paddle Inference (oneDNN on CPU, ``bf16`` through oneDNN's
  bfloat16 kernels), the predictor of :mod:`paddleseg.deploy.predictor`;
- ``onnxruntime``: the ONNX conversion of the same program
  (:mod:`paddleseg.deploy.onnx`), fp32;
- ``openvino``: the same ONNX file in OpenVINO on the CPU, ``fp32`` or
  ``bf16`` (its inference precision hint).

The ONNX file is ``model.onnx`` beside ``deploy.yaml``: converted on first
use (paddle2onnx in a child process) and reused while it is newer than the
model and parameter files. Pre- and post-processing are the Segmenter's,
whatever runs the network, so the written files differ only where the
runtimes' labels do. :func:`compare_backends` measures every available
runtime and precision on the same images against fp32 Paddle Inference:
``infer.py --benchmark`` prints that table and ``--backend auto`` takes the
fastest row that agrees on at least :data:`AGREEMENT_LIMIT` of the pixels.
"""

import importlib.util
import os
import statistics
import time

import numpy as np

from paddleseg.utils.errors import SegError
from .predictor import create_predictor, uses_native_op

__all__ = ['BACKENDS', 'AGREEMENT_LIMIT', 'ONNX_FILE', 'cpu_has_bf16',
           'check_backend', 'available_cases', 'onnx_file_for',
           'create_runner', 'compare_backends', 'pick_fastest',
           'format_table']

BACKENDS = ('paddle', 'onnxruntime', 'openvino')
# Labels of a faster runtime count as the same model's when at least this
# fraction of pixels equals fp32 Paddle Inference's (the bar; bf16
# measured 99.76% and 99.93% on the demo CCNet at 512x1024).
AGREEMENT_LIMIT = 0.995
ONNX_FILE = 'model.onnx'
_MODULES = {'onnxruntime': 'onnxruntime', 'openvino': 'openvino'}
_INSTALL = {'onnxruntime': 'pip install onnxruntime paddle2onnx',
            'openvino': 'pip install openvino paddle2onnx'}


def cpu_has_bf16(cpuinfo='/proc/cpuinfo'):
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX):
    oneDNN and OpenVINO emulate nothing slower than fp32 on other CPUs, they
    refuse or fall back, so bf16 is offered only where the flags say so."""
    try:
        with open(cpuinfo) as f:
            flags = next((line.split(':', 1)[1].split() for line in f
                          if line.startswith('flags')), [])
    except OSError:
        return False
    return 'avx512_bf16' in flags or 'amx_bf16' in flags


def _installed(backend):
    module = _MODULES.get(backend)
    return module is None or importlib.util.find_spec(module) is not None


def check_backend(backend, precision, device='cpu'):
    """Refuse a runtime or precision that cannot run here, in one sentence.

    Raises:
        SegError: unknown backend, a missing optional package, a GPU run
            outside Paddle, bf16 on a CPU without it or off the CPU, or a
            precision the runtime does not have.
    """
    if backend not in BACKENDS:
        raise SegError('--backend must be one of {} or auto, got {!r}.'
                       .format(', '.join(BACKENDS), backend))
    if not _installed(backend):
        raise SegError('--backend {} needs the {} package, which is not '
                       'installed; run `{}` or use --backend paddle.'.format(
                           backend, _MODULES[backend], _INSTALL[backend]))
    if backend != 'paddle' and device != 'cpu':
        raise SegError('--backend {} runs on the CPU here; use --device cpu '
                       'or --backend paddle on the GPU.'.format(backend))
    if precision == 'bf16':
        if device != 'cpu':
            raise SegError('--precision bf16 is for the CPU (oneDNN, '
                           'OpenVINO); on the GPU use fp16.')
        if backend == 'onnxruntime':
            raise SegError('--backend onnxruntime has no bf16 on the CPU; '
                           'use --backend paddle or openvino for bf16.')
        if not cpu_has_bf16():
            raise SegError('--precision bf16: this CPU has neither '
                           'AVX512-BF16 nor AMX (see the flags in '
                           '/proc/cpuinfo), so bf16 would not be faster; '
                           'use --precision fp32.')
    elif precision != 'fp32' and backend != 'paddle':
        raise SegError('--backend {} runs fp32 or bf16, not {}.'.format(
            backend, precision))


def available_cases(device='cpu'):
    """The (backend, precision) pairs that can run here, fp32 Paddle first
    (the reference of :func:`compare_backends`)."""
    if device != 'cpu':
        return [('paddle', 'fp32')]
    bf16 = cpu_has_bf16()
    cases = [('paddle', 'fp32')] + ([('paddle', 'bf16')] if bf16 else [])
    if _installed('onnxruntime'):
        cases.append(('onnxruntime', 'fp32'))
    if _installed('openvino'):
        cases += [('openvino', 'fp32')] + ([('openvino', 'bf16')]
                                           if bf16 else [])
    if len(cases) > 1 and importlib.util.find_spec('paddle2onnx') is None:
        cases = [c for c in cases if c[0] == 'paddle']
    return cases


def onnx_file_for(deploy):
    """``model.onnx`` beside ``deploy.yaml``: reused while newer than the
    exported program, else converted now.

    Raises:
        SegError: the program holds the native criss-cross attention
            operator (no ONNX form), or the conversion failed.
    """
    from .onnx import convert_to_onnx
    path = os.path.join(deploy.dir, ONNX_FILE)
    sources = (deploy.model_file, deploy.params_file)
    if os.path.isfile(path) and all(os.path.getmtime(path) >=
                                    os.path.getmtime(s) for s in sources):
        return path
    if uses_native_op(deploy.model_file):
        raise SegError(
            "'{}' uses the native criss-cross attention operator, which has "
            'no ONNX form; re-export with --cca_backend reference to run it '
            'in onnxruntime or OpenVINO.'.format(deploy.model_file))
    convert_to_onnx(deploy.dir, path, model_file=deploy.model_file,
                    params_file=deploy.params_file)
    return path


class _PaddleRunner:
    """A Paddle Inference predictor as a function of the input array."""

    def __init__(self, predictor):
        self.predictor = predictor

    def __call__(self, data):
        inp = self.predictor.get_input_handle(
            self.predictor.get_input_names()[0])
        inp.reshape(list(data.shape))
        inp.copy_from_cpu(data)
        self.predictor.run()
        return self.predictor.get_output_handle(
            self.predictor.get_output_names()[0]).copy_to_cpu()


class _OnnxRuntimeRunner:
    def __init__(self, path, threads):
        from .onnx import onnxruntime_session
        self.session = onnxruntime_session(path, threads)
        self.name = self.session.get_inputs()[0].name

    def __call__(self, data):
        return self.session.run(None, {self.name: data})[0]


class _OpenVINORunner:
    def __init__(self, path, threads, precision):
        import openvino
        core = openvino.Core()
        self.model = core.compile_model(core.read_model(path), 'CPU', {
            'INFERENCE_PRECISION_HINT': 'bf16' if precision == 'bf16'
            else 'f32', 'INFERENCE_NUM_THREADS': int(threads)})
        self.output = self.model.output(0)

    def __call__(self, data):
        return np.asarray(self.model(data)[self.output])


def create_runner(deploy, backend='paddle', device='cpu', precision='fp32',
                  cpu_threads=None, **paddle_options):
    """``runner(batch) -> output`` for ``deploy`` on ``backend``.

    Args:
        deploy (DeployConfig): The exported model.
        backend (str): ``paddle``, ``onnxruntime`` or ``openvino``.
        device (str): ``cpu`` or ``gpu`` (``paddle`` only).
        precision (str): ``fp32``, ``bf16`` (CPU with AVX512-BF16 or AMX;
            not onnxruntime), or Paddle's GPU ``fp16``/``int8``.
        cpu_threads (int, optional): Threads of the runtime on CPU.
        **paddle_options: The rest of :func:`create_predictor`'s arguments
            (oneDNN, TensorRT, ...).

    Raises:
        SegError: see :func:`check_backend` and :func:`onnx_file_for`.
    """
    from paddleseg.utils.runtime import default_cpu_threads
    check_backend(backend, precision, device)
    if backend == 'paddle':
        return _PaddleRunner(create_predictor(
            deploy, device=device, cpu_threads=cpu_threads,
            precision=precision, **paddle_options))
    threads = int(cpu_threads or default_cpu_threads())
    path = onnx_file_for(deploy)
    if backend == 'onnxruntime':
        return _OnnxRuntimeRunner(path, threads)
    return _OpenVINORunner(path, threads, precision)


def _timed(runner, batches, repeat):
    """(median seconds per image, outputs of the last round)."""
    per_image, outputs = [], []
    for _ in range(repeat):
        outputs = []
        for batch in batches:
            start = time.perf_counter()
            outputs.append(runner(batch))
            per_image.append((time.perf_counter() - start) / len(batch))
    return statistics.median(per_image), outputs


def _labels(outputs):
    """(N, H, W) class ids of outputs that are ids, (N, H, W) or the
    export's (N, 1, H, W), or scores (N, K, H, W). An argmax over the one
    channel of (N, 1, H, W) ids would be all zeros, and every runtime would
    agree on every pixel."""
    out = []
    for o in map(np.asarray, outputs):
        if o.ndim == 4:
            o = o[:, 0] if o.shape[1] == 1 else np.argmax(o, axis=1)
        out.append(o)
    return out


def compare_backends(deploy, batches, cases, cpu_threads=None, repeat=3,
                     **paddle_options):
    """Every (backend, precision) of ``cases`` on the same input batches:
    median latency per image (after one warm-up round) and the fraction of
    pixels labelled as the first case (fp32 Paddle) labels them.

    Args:
        deploy (DeployConfig): The exported model.
        batches (list): (N, 3, H, W) float32 arrays, already preprocessed.
        cases (list): (backend, precision) pairs, the reference first.
        cpu_threads (int, optional): Threads of every runtime.
        repeat (int): Timed rounds over ``batches``.
        **paddle_options: For the Paddle predictors (oneDNN on or off).

    Returns:
        list: dicts ``{backend, precision, ms, speedup, agreement}``, or
        ``{backend, precision, error}`` for a case that failed to run.
    """
    rows, reference, base = [], None, None
    for backend, precision in cases:
        try:
            runner = create_runner(deploy, backend, 'cpu', precision,
                                   cpu_threads, **paddle_options)
            _timed(runner, batches, 1)  # warm-up: first-run allocations
            seconds, outputs = _timed(runner, batches, repeat)
        except SegError as e:
            rows.append(dict(backend=backend, precision=precision,
                             error=str(e)))
            continue
        labels = _labels(outputs)
        if reference is None:
            reference, base = labels, seconds
        agree = float(np.mean(np.concatenate(
            [(a == b).ravel() for a, b in zip(labels, reference)])))
        rows.append(dict(backend=backend, precision=precision,
                         ms=1000 * seconds, speedup=base / seconds,
                         agreement=agree))
    return rows


def pick_fastest(rows, limit=AGREEMENT_LIMIT):
    """The fastest row of :func:`compare_backends` whose labels agree with
    fp32 Paddle's on at least ``limit`` of the pixels (fp32 Paddle itself
    always does)."""
    ok = [r for r in rows if 'error' not in r and r['agreement'] >= limit]
    return min(ok, key=lambda r: r['ms'])


def format_table(rows):
    """The rows of :func:`compare_backends` as a text table."""
    from prettytable import PrettyTable
    table = PrettyTable(['backend', 'precision', 'ms / image', 'speed-up',
                         'labels = fp32 Paddle'])
    for r in rows:
        if 'error' in r:
            table.add_row([r['backend'], r['precision'], 'failed', '-',
                           r['error'][:60]])
        else:
            table.add_row([r['backend'], r['precision'],
                           '{:.1f}'.format(r['ms']),
                           '{:.2f}x'.format(r['speedup']),
                           '{:.2%}'.format(r['agreement'])])
    return table.get_string()
