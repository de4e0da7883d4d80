"""Building the native library: the Paddle-free kernel self-test, the
fallback without a compiler, and a build error that is shown."""

import json
import math
import os
import subprocess

import numpy as np
import pytest

from paddleseg.ops import NativeBuildError, criss_cross_attention, native

CSRC = native.CSRC
SELFTEST = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        'cca_cpu_selftest.cc')


@pytest.fixture
def fresh_native(monkeypatch, tmp_path):
    """The native module as if nothing had been loaded in this process, with
    an empty cache folder."""
    monkeypatch.setattr(native, '_state', {'module': None, 'error': None,
                                           'tried': False})
    monkeypatch.setenv('PADDLESEG_EXTENSION_DIR', str(tmp_path / 'cache'))
    warnings = []
    monkeypatch.setattr(native.logger, 'warning',
                        lambda msg, *args: warnings.append(msg % args))
    return warnings


@pytest.mark.skipif(native.compiler() is None, reason='no C++ compiler')
def test_cpu_kernels_build_and_pass_without_paddle(tmp_path):
    exe = str(tmp_path / 'selftest')
    subprocess.run([native.compiler(), '-O2', '-fopenmp', '-std=c++17',
                    '-Wno-psabi', '-I', CSRC, SELFTEST, '-o', exe], check=True)
    for shape in ['2 3 5 6 11', '1 2 3 1 9', '1 2 3 9 1', '1 3 20 7 17']:
        lines = subprocess.run([exe] + shape.split(), check=True,
                               capture_output=True, text=True).stdout
        errors = [json.loads(line) for line in lines.splitlines()]
        assert [e['dtype'] for e in errors] == ['float32', 'float64']
        for e, tol in zip(errors, (1e-5, 1e-12)):
            # Each error on its own: max() would let a NaN through.
            assert all(math.isfinite(e[k]) and e[k] < tol
                       for k in ('out', 'dq', 'dk', 'dv')), (shape, e)


def test_missing_compiler_warns_once_and_uses_reference(fresh_native,
                                                        monkeypatch, inputs,
                                                        oracle):
    monkeypatch.setattr(native, 'compiler', lambda: None)
    q, k, v = inputs((1, 2, 3, 4, 5), 'float32', grad=False)  # auto: native
    for _ in range(3):
        out = criss_cross_attention(q, k, v)
        np.testing.assert_allclose(out.numpy(), oracle(q, k, v), rtol=1e-5,
                                   atol=1e-6)
    assert len(fresh_native) == 1
    assert 'No C++ compiler found' in fresh_native[0]
    assert 'PADDLESEG_CCA_BACKEND=reference' in fresh_native[0]
    with pytest.raises(NativeBuildError, match='No C\\+\\+ compiler'):
        criss_cross_attention(q, k, v, backend='native')


@pytest.mark.skipif(native.compiler() is None, reason='no C++ compiler')
def test_build_error_is_shown_with_the_compiler_output(fresh_native,
                                                       monkeypatch, tmp_path):
    broken = tmp_path / 'csrc'
    broken.mkdir()
    (broken / 'cca_op.cc').write_text(
        '#include "paddle/extension.h"\nint f() { return not_declared_x; }\n')
    monkeypatch.setattr(native, 'CSRC', str(broken))
    with pytest.raises(NativeBuildError) as info:
        native.build()
    message = str(info.value)
    assert 'not_declared_x' in message and 'error' in message
    assert native.load_native() is None  # auto: warn, then the reference
    assert len(fresh_native) == 1 and 'not_declared_x' in fresh_native[0]
