"""Convert an exported Paddle model (``model.json``, ``model.pdiparams``) to
ONNX and check the ONNX model against Paddle.

The export holds the pure-Paddle criss-cross attention
(:func:`export_for_onnx`): the native operator has no ONNX conversion.

paddle2onnx runs in a child process: on an operator it cannot convert (a
custom operator, ``paddle.diag``, ...) its C++ core aborts the whole process,
which would otherwise take the caller with it and print nothing useful. Here
a non-zero exit, a signal or a missing output file becomes one
:class:`SegError` with the child's last lines.

The check runs the exported program with Paddle (``paddle.jit.load``, see
:func:`run_paddle`) and the ONNX model with onnxruntime on one random input
and compares them (:func:`compare_outputs`).
"""

import importlib.util
import os
import re
import signal
import subprocess
import sys
import tempfile

import numpy as np
import paddle

from paddleseg.utils.errors import SegError
from .export import MODEL_FILE, PARAMS_FILE, export_model

__all__ = ['RELATIVE_ERROR_LIMIT', 'PIXEL_AGREEMENT_LIMIT',
           'require_onnx_tools', 'export_for_onnx', 'paddle2onnx_command',
           'convert_to_onnx', 'used_opset', 'check_shape', 'run_paddle',
           'onnxruntime_session', 'run_onnx', 'compare_outputs', 'check_onnx']

RELATIVE_ERROR_LIMIT = 1e-4
PIXEL_AGREEMENT_LIMIT = 0.999
_TAIL_LINES = 12


def require_onnx_tools():
    """Raise a :class:`SegError` naming the install command when paddle2onnx
    or onnxruntime is missing."""
    missing = [name for name in ('paddle2onnx', 'onnxruntime')
               if importlib.util.find_spec(name) is None]
    if missing:
        raise SegError('ONNX export needs {}, which {} not installed; run '
                       '`pip install paddle2onnx onnxruntime` (or `pip '
                       'install -e .[onnx]`).'.format(
                           ' and '.join(missing),
                           'are' if len(missing) > 1 else 'is'))


def export_for_onnx(model, model_dir, transforms, input_shape, output_op,
                    palette=None):
    """:func:`paddleseg.deploy.export.export_model` with the criss-cross
    attention as the pure-Paddle reference: the native operator has no ONNX
    conversion. The backend is explicit, so ``$PADDLESEG_CCA_BACKEND``
    (which stands in for ``auto`` only) does not change it.

    Returns:
        dict: Paths of ``model``, ``params`` and ``deploy``.
    """
    return export_model(model, model_dir, transforms,
                        input_shape=input_shape, output_op=output_op,
                        cca_backend='reference', palette=palette)


def paddle2onnx_command(model_dir, save_file, opset_version=13,
                        model_file=MODEL_FILE, params_file=PARAMS_FILE):
    """The paddle2onnx command line that converts ``model_dir``
    (``model_file`` and ``params_file`` in it: names, or paths there).

    ``python -m paddle2onnx.command`` with this interpreter, not the
    ``paddle2onnx`` console script: that script may be a shim (pyenv, conda)
    that picks another interpreter, or be missing from ``PATH``.
    """
    return [sys.executable, '-m', 'paddle2onnx.command',
            '--model_dir', model_dir,
            '--model_filename', os.path.basename(model_file),
            '--params_filename', os.path.basename(params_file),
            '--save_file', save_file,
            '--opset_version', str(opset_version)]


def _exit_status(returncode):
    if returncode < 0:
        try:
            return 'was killed by signal {}'.format(
                signal.Signals(-returncode).name)
        except ValueError:
            return 'was killed by signal {}'.format(-returncode)
    if returncode > 0:
        return 'exited with status {}'.format(returncode)
    return 'exited with status 0 but wrote no ONNX file'


def _tail(output):
    """The last non-blank lines of ``output`` without colour codes."""
    lines = [line for line in re.sub(r'\x1b\[[0-9;]*m', '', output)
             .splitlines() if line.strip()]
    return '\n'.join(lines[-_TAIL_LINES:]) or '(no output)'


def convert_to_onnx(model_dir, save_file, opset_version=13, name=None,
                    model_file=MODEL_FILE, params_file=PARAMS_FILE):
    """Convert ``model_dir`` to ``save_file`` with paddle2onnx in a child
    process.

    The child writes a temporary file beside ``save_file``, which is renamed
    to ``save_file`` only when the child succeeded, so an interrupted or
    failed conversion never leaves a partial ``.onnx`` behind.

    Args:
        model_dir (str): Folder with ``model.json`` and ``model.pdiparams``.
        save_file (str): The ``.onnx`` file to write (its folder is created).
        opset_version (int): ONNX opset (paddle2onnx raises it where an
            operator needs a newer one).
        name (str, optional): The model as errors name it (default: the
            path of ``model_file``).
        model_file (str): The program in ``model_dir`` (``model.json``;
            a ``deploy.yaml`` may name another).
        params_file (str): Its parameters (``model.pdiparams``).

    Returns:
        str: The child's output (stdout and stderr).

    Raises:
        SegError: the child failed, was killed or wrote no file.
    """
    save_file = os.path.abspath(save_file)
    os.makedirs(os.path.dirname(save_file), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.{}.'.format(
        os.path.basename(save_file)), suffix='.tmp',
        dir=os.path.dirname(save_file))
    os.close(fd)
    os.remove(tmp)  # only the child may create it: its absence is a failure
    try:
        proc = subprocess.run(
            paddle2onnx_command(model_dir, tmp, opset_version, model_file,
                                params_file),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            errors='replace')
        if (proc.returncode != 0 or not os.path.isfile(tmp)
                or os.path.getsize(tmp) == 0):
            raise SegError(
                'paddle2onnx could not convert {}: the child process {}. '
                'It aborts on an operator it cannot convert (a custom '
                'operator, paddle.diag, ...) without naming it: replace such '
                'operators in the model or try another paddle2onnx version. '
                'Its last lines:\n{}'.format(
                    name or "'{}'".format(os.path.join(
                        model_dir, os.path.basename(model_file))),
                    _exit_status(proc.returncode), _tail(proc.stdout)))
        os.replace(tmp, save_file)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return proc.stdout


def used_opset(output):
    """The opset paddle2onnx reports in its output (it raises the one asked
    for where an operator needs a newer one), or None."""
    found = re.search(r'Use opset_version = (\d+)', output)
    return int(found.group(1)) if found else None


def check_shape(input_shape, size=(256, 512)):
    """``input_shape`` with its -1 sizes made concrete: N 1, C 3, and H, W
    from ``size``."""
    n, c, h, w = input_shape
    return [1 if n == -1 else n, 3 if c == -1 else c,
            size[0] if h == -1 else h, size[1] if w == -1 else w]


def run_paddle(model_dir, x):
    """Run the exported program on ``x`` with Paddle.

    ``paddle.jit.load`` runs ``model.json`` as it is, without the fusion
    passes of Paddle Inference (conv + batch norm and others, which change
    the rounding) and without oneDNN, so what the check measures is the
    conversion alone.
    """
    layer = paddle.jit.load(os.path.join(model_dir, 'model'))
    layer.eval()
    with paddle.no_grad():
        out = layer(paddle.to_tensor(x))
    out = out[0] if isinstance(out, (list, tuple)) else out
    return out.numpy()


def onnxruntime_session(onnx_file, threads=None):
    """An onnxruntime CPU session of ``onnx_file``: ``threads`` intra-op
    threads and one inter-op thread when given (``infer.py --cpu_threads``,
    so its latency table compares runtimes on the same cores), else
    onnxruntime's default. The one place both the export check and
    ``infer.py --backend onnxruntime`` open a session."""
    import onnxruntime  # an optional extra: imported only when used
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        onnx_file, options, providers=['CPUExecutionProvider'])


def run_onnx(onnx_file, x):
    """Run ``onnx_file`` on ``x`` with onnxruntime on the CPU."""
    session = onnxruntime_session(onnx_file)
    name = session.get_inputs()[0].name
    return session.run(None, {name: x})[0]


def compare_outputs(onnx_out, paddle_out, output_op):
    """Compare the two outputs.

    Args:
        onnx_out (np.ndarray): onnxruntime's output.
        paddle_out (np.ndarray): Paddle's output.
        output_op (str): ``argmax`` (class ids) or ``softmax``/``none``.

    Returns:
        tuple: (name, value, limit, ok): for class ids the fraction of equal
        pixels, which must be at least :data:`PIXEL_AGREEMENT_LIMIT`; else
        max|onnx - paddle| / max|paddle|, at most
        :data:`RELATIVE_ERROR_LIMIT`.
    """
    if onnx_out.shape != paddle_out.shape:
        raise SegError('The ONNX model outputs shape {} where Paddle outputs '
                       '{}; the conversion is wrong, report it to '
                       'paddle2onnx.'.format(list(onnx_out.shape),
                                             list(paddle_out.shape)))
    if output_op == 'argmax':
        agreement = float(np.mean(onnx_out.astype(np.int64) ==
                                  paddle_out.astype(np.int64)))
        return ('pixel agreement', agreement, PIXEL_AGREEMENT_LIMIT,
                agreement >= PIXEL_AGREEMENT_LIMIT)
    diff = np.abs(onnx_out.astype(np.float64) - paddle_out)
    scale = np.abs(paddle_out).max()
    error = float(diff.max() / scale) if scale > 0 else float(diff.max())
    return ('relative error', error, RELATIVE_ERROR_LIMIT,
            error <= RELATIVE_ERROR_LIMIT)


def check_onnx(onnx_file, model_dir, shape, output_op, seed=0):
    """Check ``onnx_file`` against the Paddle program in ``model_dir`` on one
    uniform random input in [-1, 1] (the range of normalised images).

    Args:
        onnx_file (str): The converted model.
        model_dir (str): Folder with the exported ``model.json``.
        shape (list): N C H W of the input, all known.
        output_op (str): The exported ``output_op``.
        seed (int): Seed of the random input.

    Returns:
        str: One line with the figure, its limit and the input shape.

    Raises:
        SegError: the outputs differ beyond the limit.
    """
    x = np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)
    name, value, limit, ok = compare_outputs(
        run_onnx(onnx_file, x), run_paddle(model_dir, x), output_op)
    if name == 'pixel agreement':
        figure = '{} {:.3%} (limit {:.1%})'.format(name, value, limit)
    else:
        figure = '{} {:.2e} (limit {:.0e})'.format(name, value, limit)
    if not ok:
        raise SegError(
            "The ONNX model '{}' does not match the Paddle program: {} on "
            'input {}; it is written but should not be deployed. Untrained '
            'or diverged weights can cause this (float32 rounding amplified '
            "by a nearly one-hot attention softmax; Paddle's static and eager "
            'runs then differ too); otherwise compare intermediate outputs '
            'to find the operator that differs and report it to '
            'paddle2onnx.'.format(onnx_file, figure, list(shape)))
    return 'ONNX check: {} on input {}'.format(figure, list(shape))
