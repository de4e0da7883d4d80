"""GPU harness of the criss-cross attention CUDA kernels, without Paddle.

Builds ``paddleseg/ops/csrc/cca_cuda.cu`` (the very file the Paddle operator
compiles) with a thin PyTorch binding (``cca_torch.cpp``), then

1. checks forward and backward against a float64 einsum reference on random
   inputs, for float32, float64, float16 and bfloat16 and awkward shapes
   (B > 1, H != W, H = 1, W = 1, W not a multiple of 16);
2. times the kernels against PyTorch's einsum formulation on the same GPU
   (the one mmcv adopted in place of its CUDA op): forward and
   forward+backward medians (CUDA events) and peak extra memory.

    python benchmarks/gpu/cca_gpu.py [--check-only] [--repeat 20]
        # writes benchmarks/results/cca_gpu.{json,md}

Needs a CUDA GPU, nvcc and PyTorch with CUDA (``torch.utils.cpp_extension``).
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CSRC = os.path.join(ROOT, 'paddleseg', 'ops', 'csrc')
sys.path.insert(0, ROOT)

CHECK_SHAPES = [(2, 3, 5, 6, 7), (1, 2, 4, 1, 11), (1, 2, 4, 9, 1),
                (2, 4, 9, 10, 19), (2, 16, 64, 33, 47)]
TIME_SHAPES = [(1, 512, 33, 33), (1, 512, 65, 65), (2, 512, 97, 97),
               (2, 512, 129, 129)]
TOLERANCE = {'float64': 1e-10, 'float32': 1e-4, 'float16': 2e-2,
             'bfloat16': 6e-2}


def build():
    from torch.utils.cpp_extension import load
    return load(name='paddleseg_cca_torch',
                sources=[os.path.join(HERE, 'cca_torch.cpp'),
                         os.path.join(CSRC, 'cca_cuda.cu')],
                extra_include_paths=[CSRC],
                extra_cuda_cflags=['-O3', '--expt-relaxed-constexpr'])


def native_function(ext):
    import torch

    class CrissCrossAttention(torch.autograd.Function):
        @staticmethod
        def forward(ctx, q, k, v):
            out, att = ext.forward(q, k, v)
            ctx.save_for_backward(q, k, v, att)
            return out

        @staticmethod
        def backward(ctx, dout):
            return tuple(ext.backward(*ctx.saved_tensors, dout))

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


def _rel_err(a, b):
    return ((a.double() - b).abs().max() / (1 + b.abs().max())).item()


def check(cca):
    """Max relative errors of out, dq, dk, dv per dtype and shape."""
    import torch
    gen = torch.Generator(device='cuda').manual_seed(0)
    rows = []
    for b, cq, c, h, w in CHECK_SHAPES:
        base = [torch.randn(s, generator=gen, device='cuda',
                            dtype=torch.float64) * f
                for s, f in (((b, cq, h, w), 0.7), ((b, cq, h, w), 0.7),
                             ((b, c, h, w), 1.0))]
        grad = torch.randn((b, c, h, w), generator=gen, device='cuda',
                           dtype=torch.float64)
        ref = [x.clone().requires_grad_() for x in base]
        out_ref = einsum_cca(*ref)
        ref_grads = torch.autograd.grad(out_ref, ref, grad)
        for dtype, tol in TOLERANCE.items():
            xs = [x.to(getattr(torch, dtype)).requires_grad_() for x in base]
            out = cca(*xs)
            grads = torch.autograd.grad(out, xs, grad.to(out.dtype))
            errs = [_rel_err(out, out_ref)] + [
                _rel_err(g, r) for g, r in zip(grads, ref_grads)]
            rows.append({'shape': (b, cq, c, h, w), 'dtype': dtype,
                         'errors': errs, 'ok': max(errs) < tol})
    return rows


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


def bench(cca, shape, dtype, repeat):
    import torch
    b, c, h, w = shape
    xs = [torch.randn(s, device='cuda', dtype=dtype, requires_grad=True)
          for s in ((b, c // 8, h, w), (b, c // 8, h, w), (b, c, h, w))]
    grad = torch.randn((b, c, h, w), device='cuda', dtype=dtype)
    result = {}
    for name, fn in (('native', cca), ('torch_einsum', einsum_cca)):
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
        result[name] = {'forward': _time(fwd, repeat),
                        'forward_backward': _time(fwd_bwd, repeat),
                        'peak_extra_mb': peak}
    return result


def markdown(payload):
    lines = ['# Criss-cross attention CUDA kernels (Cq = C / 8)', '',
             '{}, torch {}, CUDA {}; medians of {} runs (CUDA events); peak '
             'extra memory of one forward+backward above the inputs. TF32 '
             'off (PyTorch default for matmul).'.format(
                 payload['gpu'], payload['torch'], payload['cuda'],
                 payload['repeat']), '',
             '## Check against the float64 reference', '',
             '| shape (B, Cq, C, H, W) | dtype | max rel. error out, dq, dk, '
             'dv | ok |', '|---|---|---|---|']
    for r in payload['check']:
        lines.append('| {} | {} | {} | {} |'.format(
            tuple(r['shape']), r['dtype'],
            ', '.join('{:.1e}'.format(e) for e in r['errors']),
            'yes' if r['ok'] else '**NO**'))
    lines += ['', '## Timing', '', '| (B, C, H, W) | dtype | formulation | '
              'forward (ms) | forward+backward (ms) | peak extra (MiB) | '
              'fwd+bwd vs einsum |', '|---|---|---|---|---|---|---|']
    for row in payload['timing']:
        ein = row['result']['torch_einsum']['forward_backward']
        for name, r in row['result'].items():
            lines.append('| {} | {} | {} | {:.3f} | {:.3f} | {:.0f} | {:.2f} '
                         '|'.format(tuple(row['shape']), row['dtype'], name,
                                    1e3 * r['forward'],
                                    1e3 * r['forward_backward'],
                                    r['peak_extra_mb'],
                                    r['forward_backward'] / ein))
    return '\n'.join(lines) + '\n'


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--check-only', action='store_true')
    parser.add_argument('--repeat', type=int, default=20)
    args = parser.parse_args()
    import torch
    if not torch.cuda.is_available():
        sys.exit('no CUDA GPU: this harness only runs on a GPU machine')
    torch.backends.cuda.matmul.allow_tf32 = False
    cca = native_function(build())
    rows = check(cca)
    for r in rows:
        print(r['shape'], r['dtype'], ['%.1e' % e for e in r['errors']],
              'ok' if r['ok'] else 'FAILED')
    if not all(r['ok'] for r in rows):
        sys.exit('the CUDA kernels disagree with the float64 reference')
    if args.check_only:
        return
    timing = [{'shape': s, 'dtype': str(dt).split('.')[-1],
               'result': bench(cca, s, dt, args.repeat)}
              for s in TIME_SHAPES for dt in (torch.float32, torch.float16)]
    from benchmarks.common import write_results
    payload = {'gpu': torch.cuda.get_device_name(), 'torch': torch.__version__,
               'cuda': torch.version.cuda, 'repeat': args.repeat,
               'check': rows, 'timing': timing}
    write_results('cca_gpu', payload, markdown(payload))


if __name__ == '__main__':
    main()
