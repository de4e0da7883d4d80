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


def write_results(name, payload, markdown):
    """Write benchmarks/results/<name>.json and .md."""
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, name + '.json'), 'w') as f:
        json.dump(payload, f, indent=2)
    with open(os.path.join(RESULTS, name + '.md'), 'w') as f:
        f.write(markdown)
    print(markdown)


def machine():
    import platform
    import paddle
    return {'cpu_count': os.cpu_count(), 'platform': platform.platform(),
            'paddle': paddle.__version__, 'python': platform.python_version()}
