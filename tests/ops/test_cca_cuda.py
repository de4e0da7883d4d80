"""The CUDA kernels without a GPU: nvcc compiles the kernels (both designs)
and the standalone GPU self-test for sm_80 and sm_90, the tensor-core
design's PTX holds its mma.sync and cp.async instructions and its kernels
neither spill nor outgrow their register and shared-memory budget, the
host launch arithmetic passes its unit test, and the kernels run on the CPU
through a small CUDA emulation (cuda_emulation.h) against the
double-precision oracle on NaN-poisoned buffers."""

import glob
import json
import math
import os
import re
import shutil
import subprocess

import pytest

from paddleseg.ops import native

HERE = os.path.dirname(os.path.abspath(__file__))
CU_FILES = sorted(glob.glob(os.path.join(native.CSRC, '*.cu')))
NVCC = shutil.which('nvcc')
ARCHS = ('80', '90')
GENCODE = ['-gencode=arch=compute_{0},code=sm_{0}'.format(a) for a in ARCHS]
needs_nvcc = pytest.mark.skipif(NVCC is None, reason='nvcc not found')
needs_cxx = pytest.mark.skipif(native.compiler() is None,
                               reason='no C++ compiler')

# The tensor-core kernels, by (mangled) name: each must appear for both
# architectures, without spills, within the 3 blocks a multiprocessor that
# its __launch_bounds__ asks for (65536 / (128 * 3) = 170 registers) and in
# the 48 KiB of static shared memory.
TENSOR_CORE_KERNELS = {
    'aggregate fp16': 'aggregate_kernelI6__halfLi1E',
    'aggregate bf16': 'aggregate_kernelI13__nv_bfloat16Li1E',
    'aggregate tf32': 'aggregate_kernelIfLi2E',
    'energy fp16': 'energy_kernelI6__halfLi1E',
    'energy bf16': 'energy_kernelI13__nv_bfloat16Li1E',
    'energy tf32': 'energy_kernelIfLi2E',
}
PTX_INSTRUCTIONS = ['mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32',
                    'mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32',
                    'mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32',
                    'cp.async.cg.shared.global', 'cp.async.wait_group',
                    'cvt.rna.tf32.f32']

# B > 1, H = 1, W = 1, H and W past a 64-wide tile, Cq and C past 64 and
# no multiple of any tile, Cq = 0 and C = 0: every tile edge of both
# designs (64 x 64 x 16 SIMT tiles, 16 lanes, 4 x 4 per thread; 64 x 64
# energy tiles, 64 channels x 8 x 8 pixels, k stages of 4 to 32).
EMULATED_SHAPES = ['2 3 5 6 7', '1 2 4 1 11', '1 2 4 9 1', '1 1 2 1 1',
                   '1 2 3 67 5', '1 2 3 4 70', '2 66 67 5 6',
                   '2 65 130 9 10', '1 0 3 4 5', '1 2 0 4 5']
EMULATION_TOL = {'float32': 5e-5, 'float64': 1e-12}


def test_every_cuda_source_is_known_to_the_build():
    assert [os.path.basename(f) for f in CU_FILES] == native.CUDA_SOURCES


def _ptxas_resources(log):
    """{(arch, mangled kernel): {'registers', 'smem', 'spill'}} from the
    output of -Xptxas -v."""
    found, current = {}, None
    for line in log.splitlines():
        m = re.search(r"Compiling entry function '(\w+)' for 'sm_(\d+)'", line)
        if m:
            current = (m.group(2), m.group(1))
            found[current] = {'registers': 0, 'smem': 0, 'spill': 0}
            continue
        if current is None:
            continue
        m = re.search(r'(\d+) bytes spill stores, (\d+) bytes spill loads',
                      line)
        if m:
            found[current]['spill'] = int(m.group(1)) + int(m.group(2))
        m = re.search(r'Used (\d+) registers', line)
        if m:
            found[current]['registers'] = int(m.group(1))
            m = re.search(r'(\d+) bytes smem', line)
            found[current]['smem'] = int(m.group(1)) if m else 0
    return found


@pytest.fixture(scope='module')
def kernels_build(tmp_path_factory):
    """cca_cuda.cu compiled once for sm_80 and sm_90 with -Xptxas -v and
    the PTX kept: {'resources': ..., 'ptx': {arch: text}}."""
    if NVCC is None:
        pytest.skip('nvcc not found')
    out = tmp_path_factory.mktemp('nvcc')
    source = os.path.join(native.CSRC, 'cca_cuda.cu')
    proc = subprocess.run(
        [NVCC, '-std=c++17', '-O3', '--threads', '2', '-c', source, '-o',
         str(out / 'cca_cuda.o'), '-Xptxas', '-v', '-keep', '-keep-dir',
         str(out)] + GENCODE, capture_output=True, text=True, cwd=str(out))
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert os.path.getsize(out / 'cca_cuda.o') > 0
    ptx = {}
    for path in glob.glob(str(out / '*.ptx')):
        with open(path) as f:
            text = f.read()
        m = re.search(r'^\.target\s+sm_(\d+)', text, re.M)
        if m:
            ptx[m.group(1)] = text
    return {'resources': _ptxas_resources(proc.stderr + proc.stdout),
            'ptx': ptx}


def test_nvcc_compiles_both_designs_for_sm80_and_sm90(kernels_build):
    names = {name for _, name in kernels_build['resources']}
    for arch in ARCHS:
        kernels = [n for a, n in kernels_build['resources'] if a == arch]
        for family in ('lane_gemm_kernel', 'gemm_kernel', 'softmax_kernel',
                       'transpose_kernel', 'energy_kernel',
                       'aggregate_kernel', 'softmax_backward_kernel'):
            assert any(family in n for n in kernels), (arch, family)
    assert len(names) >= 40  # 4 dtypes x SIMT + 7 (dtype, math) x tiled


def test_tensor_core_design_holds_mma_and_cp_async(kernels_build):
    assert sorted(kernels_build['ptx']) == list(ARCHS)
    for arch, text in kernels_build['ptx'].items():
        for instruction in PTX_INSTRUCTIONS:
            assert instruction in text, (arch, instruction)


def test_tensor_core_kernels_fit_their_budget(kernels_build):
    resources = kernels_build['resources']
    for arch in ARCHS:
        for label, key in TENSOR_CORE_KERNELS.items():
            hits = [r for (a, n), r in resources.items()
                    if a == arch and key in n]
            assert hits, (arch, label)
            for r in hits:
                assert r['spill'] == 0, (arch, label, r)
                assert r['registers'] <= 170, (arch, label, r)
                assert r['smem'] <= 48 * 1024, (arch, label, r)


@needs_nvcc
def test_gpu_selftest_compiles_for_sm80_and_sm90(tmp_path):
    obj = str(tmp_path / 'selftest.o')
    proc = subprocess.run(
        [NVCC, '-std=c++17', '-O2', '-c',
         os.path.join(HERE, 'cca_cuda_selftest.cu'), '-o', obj, '-I',
         native.CSRC, '-I', HERE] + GENCODE, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert os.path.getsize(obj) > 0


@needs_cxx
def test_launch_arithmetic_and_dtype_table(tmp_path):
    exe = str(tmp_path / 'launch_test')
    subprocess.run([native.compiler(), '-std=c++17', '-O1', '-I',
                    native.CSRC, '-I', HERE,
                    os.path.join(HERE, 'cca_cuda_launch_test.cc'), '-o', exe],
                   check=True)
    proc = subprocess.run([exe], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
    assert 'all checks passed' in proc.stdout


def errors_within(row, tol):
    """True when every error is a finite number below tol (NaN fails)."""
    return all(math.isfinite(row[k]) and row[k] < tol
               for k in ('out', 'dq', 'dk', 'dv'))


def test_errors_within_refuses_nan_and_inf():
    good = {'out': 1e-7, 'dq': 0.0, 'dk': 2e-7, 'dv': 1e-7}
    assert errors_within(good, 1e-5)
    for bad in (float('nan'), float('inf')):
        for key in good:
            assert not errors_within(dict(good, **{key: bad}), 1e-5)


@pytest.fixture(scope='module')
def emulated(tmp_path_factory):
    """The emulation test program, built with a y/z grid limit of 3 so that
    every launch is split."""
    if native.compiler() is None:
        pytest.skip('no C++ compiler')
    exe = str(tmp_path_factory.mktemp('emulation') / 'emulated')
    subprocess.run([native.compiler(), '-std=c++17', '-O2', '-pthread',
                    '-DCCA_GRID_LIMIT_YZ=3', '-I', native.CSRC, '-I', HERE,
                    '-include', os.path.join(HERE, 'cuda_emulation.h'),
                    '-x', 'c++',
                    os.path.join(HERE, 'cca_cuda_emulation_test.cc'),
                    '-o', exe], check=True)
    return exe


def _run_emulated(exe, shape, env=None):
    lines = subprocess.run([exe] + shape.split(), check=True,
                           capture_output=True, text=True,
                           env=dict(os.environ, **(env or {}))).stdout
    return [json.loads(line) for line in lines.splitlines()]


@pytest.mark.parametrize('shape', EMULATED_SHAPES)
def test_cuda_kernels_emulated_on_cpu_match_the_oracle(emulated, shape):
    rows = _run_emulated(emulated, shape)
    assert [(r['design'], r['dtype']) for r in rows] == [
        ('simt', 'float32'), ('simt', 'float64'), ('tiled', 'float32'),
        ('tiled', 'float64')]
    for r in rows:
        assert r['rc'] == 0, (shape, r)
        assert errors_within(r, EMULATION_TOL[r['dtype']]), (shape, r)


def test_emulated_threads_in_reverse_order_agree(emulated):
    # A missing barrier between one thread's write and another's read
    # passes in one scheduling order only.
    shape = '2 66 67 9 10'
    forward = _run_emulated(emulated, shape)
    reverse = _run_emulated(emulated, shape,
                            {'CCA_EMULATION_ORDER': 'reverse'})
    assert forward == reverse
    for r in reverse:
        assert r['rc'] == 0 and errors_within(r, EMULATION_TOL[r['dtype']])
