"""Helpers shared by the benchmark scripts: timing, child processes, output."""

import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, 'benchmarks', 'results')


def median_time(fn, repeat=5, warmup=2):
    """Median wall time of ``fn()`` in seconds over ``repeat`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def run_child(script, args, env=None):
    """Run ``python script args`` and parse the JSON on its last stdout line."""
    e = dict(os.environ)
    e.update(env or {})
    for key, value in (env or {}).items():
        if value is None:
            e.pop(key, None)
    proc = subprocess.run([sys.executable, script] + list(args), env=e,
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError('{} {} failed:\n{}'.format(script, args,
                                                      proc.stderr[-3000:]))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def rss_mb():
    """This process's resident memory now, in MB (peak-memory benchmarks
    subtract it, taken after the model is built, from ``ru_maxrss``)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    return float('nan')


def write_results(name, payload, markdown, directory=None):
    """Write <directory>/<name>.json and .md (default: benchmarks/results)
    and print the markdown."""
    directory = directory or RESULTS
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name + '.json'), 'w') as f:
        json.dump(payload, f, indent=2)
    with open(os.path.join(directory, name + '.md'), 'w') as f:
        f.write(markdown)
    print(markdown)


def cpu_model():
    """The CPU's model name and the vector extensions that matter here
    (results differ between the AVX2-only and the AVX-512/BF16 machines)."""
    name, flags = 'unknown', set()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name') and name == 'unknown':
                    name = line.split(':', 1)[1].strip()
                elif line.startswith('flags') and not flags:
                    flags = set(line.split(':', 1)[1].split())
    except OSError:
        pass
    ext = [e for e in ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16')
           if e in flags]
    return '{} ({})'.format(name, ', '.join(ext) or 'no AVX2')


def machine():
    import platform
    import paddle
    return {'cpu': cpu_model(), 'cpu_count': os.cpu_count(),
            'platform': platform.platform(), 'paddle': paddle.__version__,
            'python': platform.python_version()}


def fcn_step_time(output_stride=8, shape=(4, 3, 128, 256), num_classes=19):
    """Median training-step time (s) of FCN-ResNet18_vd on random data."""
    import paddle
    import paddleseg  # noqa: F401  (registration, process set-up)
    from paddleseg.cvlibs import manager
    paddle.seed(0)
    backbone = manager.BACKBONES['ResNet18_vd'](output_stride=output_stride)
    model = manager.MODELS['FCN'](num_classes=num_classes, backbone=backbone)
    opt = paddle.optimizer.Momentum(0.01, parameters=model.parameters())
    x = paddle.randn(list(shape))
    y = paddle.randint(0, num_classes, [shape[0]] + list(shape[2:]))

    def step():
        loss = paddle.nn.functional.cross_entropy(model(x)[0], y, axis=1)
        loss.backward()
        opt.step()
        opt.clear_grad()

    return median_time(step, repeat=7, warmup=2)
