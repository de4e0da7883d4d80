"""GPU harness of the criss-cross attention CUDA kernels, without Paddle.

Builds ``paddleseg/ops/csrc/cca_cuda.cu`` (the very file the Paddle operator
compiles) with a thin PyTorch binding (``cca_torch.cpp``), then

1. checks forward and backward of every kernel design against a float64
   einsum reference (fed the inputs as rounded to the dtype) for float32,
   float64, float16 and bfloat16, on outputs that start as NaN, over shapes
   that cross every tile edge (B > 1, H = 1, W = 1, H, W, C, Cq past 64,
   Cq = 0, C = 0), and that a second run gives the same bits;
2. times the designs against PyTorch's einsum formulation on the same GPU
   (the one mmcv adopted in place of its CUDA op): forward and
   forward+backward medians (CUDA events) and peak extra memory.

    python benchmarks/gpu/cca_gpu.py --out DIR [--check-only] [--repeat 20]
        [--designs simt,tiled,tiled_tf32] [--build-dir DIR] [--build-only]
        [--dry-run]

Writes DIR/cca_gpu.json and DIR/cca_gpu.md and prints both in full (on a
lent GPU machine DIR is $OUT, which comes back; benchmarks/gpu/run_all.sh
runs this). ``--dry-run`` checks the arguments and prints the plan without
PyTorch or a GPU. Needs a CUDA GPU, nvcc and PyTorch with CUDA
(``torch.utils.cpp_extension``). Exit status 1 when a check fails.
"""

import argparse
import json
import math
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CSRC = os.path.join(ROOT, 'paddleseg', 'ops', 'csrc')
sys.path.insert(0, ROOT)

# Before any GPU work: a missing module must not cost the measurements.
from benchmarks.common import write_results  # noqa: E402

DESIGNS = ('simt', 'tiled', 'tiled_tf32', 'tiled_scalar')
DTYPES = ('float32', 'float64', 'float16', 'bfloat16')
# (B, Cq, C, H, W): every tile edge of both designs (64 x 64 x 16 SIMT
# tiles, 16 lanes; 64 x 64 energy tiles, 64 channels x 8 x 8 pixels).
CHECK_SHAPES = [(2, 3, 5, 6, 7), (1, 2, 4, 1, 11), (1, 2, 4, 9, 1),
                (1, 1, 3, 1, 1), (2, 4, 9, 10, 19), (2, 16, 64, 33, 47),
                (1, 66, 67, 65, 5), (2, 8, 130, 9, 129),
                (2, 72, 130, 67, 129), (2, 64, 512, 97, 97),
                (3, 0, 4, 5, 6), (2, 4, 0, 5, 6)]
# (B, C, H, W) with Cq = C / 8: CCNet at a 769 x 769 crop (stride 8), a
# Cityscapes 1024 x 2048 crop at stride 8 (128 x 256), one large map.
TIME_SHAPES = [(2, 512, 97, 97), (4, 512, 128, 256), (1, 512, 384, 384)]
TIME_DTYPES = ('float32', 'float16', 'bfloat16')
TOLERANCE = {'float64': 1e-10, 'float32': 1e-4, 'float16': 2e-2,
             'bfloat16': 6e-2}
TF32_TOLERANCE = 2e-2


def tolerance(dtype, design):
    if dtype == 'float32' and design == 'tiled_tf32':
        return TF32_TOLERANCE
    return TOLERANCE[dtype]


def passes(errors, tol):
    """True when every error is a finite number below tol: a NaN fails
    (``max(errors) < tol`` would let one through)."""
    return all(isinstance(e, (int, float)) and math.isfinite(e) and e < tol
               for e in errors)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', required=True,
                        help='folder for cca_gpu.json and cca_gpu.md')
    parser.add_argument('--check-only', action='store_true')
    parser.add_argument('--repeat', type=int, default=20)
    parser.add_argument('--designs', default='simt,tiled,tiled_tf32',
                        help='comma-separated, of ' + ', '.join(DESIGNS))
    parser.add_argument('--build-dir', default=None,
                        help='extension build folder (kept between runs)')
    parser.add_argument('--build-only', action='store_true')
    parser.add_argument('--dry-run', action='store_true',
                        help='check the arguments, print the plan, no GPU')
    args = parser.parse_args(argv)
    args.designs = [d for d in args.designs.split(',') if d]
    unknown = [d for d in args.designs if d not in DESIGNS]
    if unknown or not args.designs:
        parser.error('unknown design(s) {}; choose from {}'.format(
            unknown, ', '.join(DESIGNS)))
    if args.repeat < 1:
        parser.error('--repeat must be at least 1')
    return args


def plan(args):
    return {'out': os.path.abspath(args.out), 'designs': args.designs,
            'check_shapes': CHECK_SHAPES,
            'time_shapes': [] if args.check_only else TIME_SHAPES,
            'time_dtypes': TIME_DTYPES, 'repeat': args.repeat,
            'sources': plan_sources()}


def build(build_dir=None, verbose=False):
    import torch
    from torch.utils.cpp_extension import load
    major, minor = torch.cuda.get_device_capability()
    arch = '{}{}'.format(major, minor)
    build_dir = build_dir or tempfile.mkdtemp(prefix='cca_torch_')
    os.makedirs(build_dir, exist_ok=True)
    return load(name='paddleseg_cca_torch',
                sources=plan_sources(), extra_include_paths=[CSRC],
                extra_cflags=['-O3', '-std=c++17'],
                extra_cuda_cflags=[
                    '-O3', '-std=c++17', '--expt-relaxed-constexpr',
                    '-gencode=arch=compute_{0},code=sm_{0}'.format(arch)],
                build_directory=build_dir, verbose=verbose)


def plan_sources():
    return [os.path.join(HERE, 'cca_torch.cpp'),
            os.path.join(CSRC, 'cca_cuda.cu')]


def native_function(ext, design):
    import torch
    code = ext.design_code(design)

    class CrissCrossAttention(torch.autograd.Function):
        @staticmethod
        def forward(ctx, q, k, v):
            out, att = ext.forward(q, k, v, code, False)
            ctx.save_for_backward(q, k, v, att)
            return out

        @staticmethod
        def backward(ctx, dout):
            q, k, v, att = ctx.saved_tensors
            return tuple(ext.backward(q, k, v, att, dout, code, False))

    return CrissCrossAttention.apply


def einsum_cca(q, k, v):
    """PyTorch einsum formulation: the convention of PaddleSeg and mmcv."""
    import torch
    h = q.shape[2]
    e_col = torch.einsum('nchw,nciw->nhwi', q, k)
    eye = torch.eye(h, dtype=torch.bool, device=q.device)[:, None, :]
    e_col = e_col.masked_fill(eye, float('-inf'))
    e_row = torch.einsum('nchw,nchj->nhwj', q, k)
    att = torch.softmax(torch.cat([e_col, e_row], dim=-1), dim=-1)
    return (torch.einsum('nhwi,nciw->nchw', att[..., :h], v) +
            torch.einsum('nhwj,nchj->nchw', att[..., h:], v))


def rel_err(a, ref):
    """max |a - ref| / (1 + |ref|); NaN if a holds a NaN or the shapes
    differ; 0 for empty tensors."""
    if tuple(a.shape) != tuple(ref.shape):
        return float('nan')
    if a.numel() == 0:
        return 0.0
    a = a.double()
    if not bool(a.isfinite().all()):
        return float('nan')
    return ((a - ref).abs() / (1 + ref.abs())).max().item()


def _inputs(shape, seed=0):
    """float64 q, k, v, dout; q and k scaled to energies of std ~1.5."""
    import torch
    b, cq, c, h, w = shape
    gen = torch.Generator(device='cuda').manual_seed(seed)
    scale = math.sqrt(1.5 / math.sqrt(max(cq, 1)))
    return [torch.randn(s, generator=gen, device='cuda',
                        dtype=torch.float64) * f
            for s, f in (((b, cq, h, w), scale), ((b, cq, h, w), scale),
                         ((b, c, h, w), 1.0), ((b, c, h, w), 1.0))]


def _reference(q, k, v, g):
    import torch
    xs = [x.double().clone().requires_grad_() for x in (q, k, v)]
    out = einsum_cca(*xs)
    grads = torch.autograd.grad(out, xs, g.double(), allow_unused=True)
    grads = [torch.zeros_like(x) if gr is None else gr
             for x, gr in zip(xs, grads)]
    return [out.detach()] + list(grads)


def check(ext, designs):
    """One row per shape, dtype and design: errors of out, dq, dk, dv,
    whether two runs gave the same bits, ok."""
    import torch
    rows = []
    for shape in CHECK_SHAPES:
        base = _inputs(shape)
        for dtype in DTYPES:
            xs = [x.to(getattr(torch, dtype)) for x in base]
            ref = _reference(*xs)
            for design in designs:
                if design == 'tiled_tf32' and dtype != 'float32':
                    continue  # the same program as 'tiled' there
                rows.append(_check_one(ext, shape, dtype, design, xs, ref))
    return rows


def _check_one(ext, shape, dtype, design, xs, ref):
    import torch
    code = ext.design_code(design)
    row = {'shape': list(shape), 'dtype': dtype, 'design': design,
           'tolerance': tolerance(dtype, design)}
    try:
        runs = []
        for _ in range(2):
            out, att = ext.forward(xs[0], xs[1], xs[2], code, True)
            grads = ext.backward(xs[0], xs[1], xs[2], att, xs[3], code, True)
            torch.cuda.synchronize()
            runs.append([out] + list(grads))
    except RuntimeError as e:
        row.update(errors=[float('nan')] * 4, deterministic=False, ok=False,
                   error=str(e).splitlines()[0])
        return row
    row['errors'] = [rel_err(a, r) for a, r in zip(runs[0], ref)]
    row['deterministic'] = all(torch.equal(a, b)
                               for a, b in zip(runs[0], runs[1]))
    row['ok'] = row['deterministic'] and passes(row['errors'],
                                                row['tolerance'])
    return row


def _time(fn, repeat):
    import torch
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return sorted(times)[len(times) // 2]


def _measure(fn, xs, grad, repeat):
    import torch

    def fwd():
        with torch.no_grad():
            fn(*xs)

    def fwd_bwd():
        torch.autograd.grad(fn(*xs), xs, grad)

    fwd_bwd()
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fwd_bwd()
    torch.cuda.synchronize()
    peak = (torch.cuda.max_memory_allocated() - base) / 2 ** 20
    return {'forward': _time(fwd, repeat),
            'forward_backward': _time(fwd_bwd, repeat),
            'peak_extra_mb': peak}


def formulations(ext, designs, dtype):
    """(name, function, TF32 matmuls) to time for one dtype."""
    out = [('native_' + d, native_function(ext, d), False) for d in designs
           if d != 'tiled_tf32' or dtype == 'float32']
    out.append(('torch_einsum', einsum_cca, False))
    if dtype == 'float32':
        out.append(('torch_einsum_tf32', einsum_cca, True))
    return out


def bench(ext, shape, dtype, designs, repeat):
    import torch
    b, c, h, w = shape
    dt = getattr(torch, dtype)
    xs = [torch.randn(s, device='cuda', dtype=dt, requires_grad=True)
          for s in ((b, c // 8, h, w), (b, c // 8, h, w), (b, c, h, w))]
    grad = torch.randn((b, c, h, w), device='cuda', dtype=dt)
    result = {}
    for name, fn, tf32 in formulations(ext, designs, dtype):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        try:
            result[name] = _measure(fn, xs, grad, repeat)
        except RuntimeError as e:  # out of memory, a failing launch
            result[name] = {'error': str(e).splitlines()[0]}
            torch.cuda.empty_cache()
        finally:
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
    return result


def _ms(r, key):
    return '{:.3f}'.format(1e3 * r[key]) if key in r else '-'


def markdown(payload):
    lines = ['# Criss-cross attention CUDA kernels', '',
             '{}, torch {}, CUDA {}; medians of {} runs (CUDA events); peak '
             'extra memory of one forward+backward above the inputs; '
             'Cq = C / 8 in the timings. TF32 off except in tiled_tf32 and '
             'torch_einsum_tf32.'.format(
                 payload['gpu'], payload['torch'], payload['cuda'],
                 payload['repeat']), '',
             '## Check against the float64 reference (outputs start as NaN)',
             '', '| shape (B, Cq, C, H, W) | dtype | design | max rel. error '
             'out, dq, dk, dv | tolerance | same bits twice | ok |',
             '|---|---|---|---|---|---|---|']
    for r in payload['check']:
        lines.append('| {} | {} | {} | {} | {:.0e} | {} | {} |'.format(
            tuple(r['shape']), r['dtype'], r['design'],
            r.get('error') or ', '.join('{:.1e}'.format(e)
                                        for e in r['errors']),
            r['tolerance'], 'yes' if r['deterministic'] else 'no',
            'yes' if r['ok'] else '**NO**'))
    failed = {(r['dtype'], r['design']) for r in payload['check']
              if not r['ok']}
    lines += ['', '## Timing', '', '| (B, C, H, W) | dtype | formulation | '
              'forward (ms) | forward+backward (ms) | peak extra (MiB) | '
              'fwd vs einsum | fwd+bwd vs einsum |',
              '|---|---|---|---|---|---|---|---|']
    for row in payload['timing']:
        ein = row['result'].get('torch_einsum', {})
        for name, r in row['result'].items():
            note = ' (check failed)' if (
                row['dtype'], name.replace('native_', '')) in failed else ''
            ratio = ['{:.2f}'.format(r[k] / ein[k]) if k in r and k in ein
                     else '-' for k in ('forward', 'forward_backward')]
            lines.append('| {} | {} | {}{} | {} | {} | {} | {} | {} |'.format(
                tuple(row['shape']), row['dtype'], name, note,
                _ms(r, 'forward'), _ms(r, 'forward_backward'),
                '{:.0f}'.format(r['peak_extra_mb']) if 'peak_extra_mb' in r
                else r.get('error', '-'), ratio[0], ratio[1]))
    return '\n'.join(lines) + '\n'


def main(argv=None):
    args = parse_args(argv)
    if args.dry_run:
        print(json.dumps(plan(args), indent=1))
        return 0
    import torch
    if not torch.cuda.is_available():
        sys.exit('no CUDA GPU: this harness only runs on a GPU machine')
    torch.backends.cuda.matmul.allow_tf32 = False
    ext = build(args.build_dir, verbose=True)
    if args.build_only:
        return 0
    payload = {'gpu': torch.cuda.get_device_name(),
               'capability': list(torch.cuda.get_device_capability()),
               'torch': torch.__version__, 'cuda': torch.version.cuda,
               'repeat': args.repeat, 'designs': args.designs,
               'check': check(ext, args.designs), 'timing': []}
    for r in payload['check']:
        print(r['shape'], r['dtype'], r['design'],
              ['%.1e' % e for e in r['errors']],
              'ok' if r['ok'] else 'FAILED ' + r.get('error', ''))
    # Written now and again after the timing, so a crash there keeps these.
    write_results('cca_gpu', payload, markdown(payload), directory=args.out)
    if not args.check_only:
        for shape in TIME_SHAPES:
            for dtype in TIME_DTYPES:
                payload['timing'].append({
                    'shape': list(shape), 'dtype': dtype,
                    'result': bench(ext, shape, dtype, args.designs,
                                    args.repeat)})
                print('timed', shape, dtype, flush=True)
        write_results('cca_gpu', payload, markdown(payload),
                      directory=args.out)
    print(json.dumps(payload, indent=1))
    return 0 if all(r['ok'] for r in payload['check']) else 1


if __name__ == '__main__':
    sys.exit(main())
