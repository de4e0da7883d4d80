"""The CUDA kernels without a GPU: nvcc compiles every ``.cu`` file for
sm_80 and sm_90, and the kernels run on the CPU through a small CUDA
emulation (cuda_emulation.h) against the double-precision oracle."""

import glob
import json
import os
import shutil
import subprocess

import pytest

from paddleseg.ops import native

HERE = os.path.dirname(os.path.abspath(__file__))
CU_FILES = sorted(glob.glob(os.path.join(native.CSRC, '*.cu')))


def test_every_cuda_source_is_known_to_the_build():
    assert [os.path.basename(f) for f in CU_FILES] == native.CUDA_SOURCES


@pytest.mark.skipif(shutil.which('nvcc') is None, reason='nvcc not found')
@pytest.mark.parametrize('source', CU_FILES, ids=os.path.basename)
def test_nvcc_compiles_for_sm80_and_sm90(source, tmp_path):
    obj = str(tmp_path / 'kernel.o')
    proc = subprocess.run(
        ['nvcc', '-std=c++17', '-O2', '-c', source, '-o', obj,
         '-gencode=arch=compute_80,code=sm_80',
         '-gencode=arch=compute_90,code=sm_90'],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert os.path.getsize(obj) > 0


@pytest.mark.skipif(native.compiler() is None, reason='no C++ compiler')
def test_cuda_kernels_emulated_on_cpu_match_the_oracle(tmp_path):
    exe = str(tmp_path / 'emulated')
    subprocess.run([native.compiler(), '-std=c++17', '-O1', '-pthread',
                    '-I', native.CSRC, '-I', HERE, '-include',
                    os.path.join(HERE, 'cuda_emulation.h'), '-x', 'c++',
                    os.path.join(HERE, 'cca_cuda_emulation_test.cc'),
                    '-o', exe], check=True)
    # B > 1 with W < 16 lanes, H = 1, W = 1, and W over two lane blocks.
    for shape in ['2 3 5 6 7', '1 2 4 1 11', '1 2 4 9 1', '1 3 9 5 19']:
        lines = subprocess.run([exe] + shape.split(), check=True,
                               capture_output=True, text=True).stdout
        rows = [json.loads(line) for line in lines.splitlines()]
        assert [r['dtype'] for r in rows] == ['float32', 'float64']
        for r, tol in zip(rows, (1e-5, 1e-12)):
            assert r['rc'] == 0
            assert max(r['out'], r['dq'], r['dk'], r['dv']) < tol, (shape, r)
