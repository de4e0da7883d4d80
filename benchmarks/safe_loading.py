"""What loading without running code costs: a CCNet-ResNet101_vd checkpoint
(the published CCNet recipe's model) read by ``paddle.load`` (which
unpickles whatever the file says, into Tensors), by the project's
restricted unpickler (``paddleseg.utils.weights.load_state_dict``, into
NumPy arrays) and from ``.safetensors``; and the whole load into the model
both ways (``model.set_state_dict(paddle.load(f))`` against
``load_entire_model(model, f, strict=True)``, which also matches names and
shapes).

    python benchmarks/safe_loading.py

Medians of interleaved rounds in one process, after one warm-up read each
(the file is then in the page cache: this measures parsing, not the disk).
Writes benchmarks/results/safe_loading.{json,md}.
"""

import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.common import machine, write_results  # noqa: E402

ROUNDS = 7


def _checkpoint(folder):
    import paddle
    import paddleseg  # noqa: F401  (registration)
    from paddleseg.cvlibs import manager
    from paddleseg.utils.weights import write_safetensors
    paddle.seed(0)
    model = manager.MODELS['CCNet'](
        num_classes=19, backbone=manager.BACKBONES['ResNet101_vd'](
            output_stride=8), recurrence=2)
    state = model.state_dict()
    pdparams = os.path.join(folder, 'model.pdparams')
    paddle.save(state, pdparams)
    st = write_safetensors(state, os.path.join(folder, 'model.safetensors'))
    return model, pdparams, st, len(state)


def main():
    import numpy as np
    import paddle
    from paddleseg.utils import logger
    from paddleseg.utils.weights import load_entire_model, load_state_dict
    logger.logger.setLevel('WARNING')  # one 'Loaded' line per round
    with tempfile.TemporaryDirectory() as folder:
        model, pdparams, st, entries = _checkpoint(folder)
        readers = {
            'read: paddle.load': lambda: paddle.load(pdparams),
            'read: restricted unpickler': lambda: load_state_dict(pdparams),
            'read: safetensors': lambda: load_state_dict(st),
            'into the model: set_state_dict(paddle.load)':
                lambda: model.set_state_dict(paddle.load(pdparams)),
            'into the model: load_entire_model (.pdparams)':
                lambda: load_entire_model(model, pdparams, strict=True),
            'into the model: load_entire_model (.safetensors)':
                lambda: load_entire_model(model, st, strict=True),
        }
        times = {name: [] for name in readers}
        for fn in readers.values():
            fn()
        for _ in range(ROUNDS):
            for name, fn in readers.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        size = os.path.getsize(pdparams)
    med = {k: float(np.median(v)) for k, v in times.items()}
    rows = ['| what | median (s) | vs the paddle.load row above it |',
            '|---|---|---|']
    for k, v in med.items():
        base = med['read: paddle.load' if k.startswith('read') else
                   'into the model: set_state_dict(paddle.load)']
        rows.append('| {} | {:.3f} | {:.2f}x |'.format(k, v, v / base))
    info = machine()
    markdown = (
        '# Loading a checkpoint without running code from it\n\n'
        'CCNet-ResNet101_vd os8 R=2 state dict ({} entries, {:.0f} MB), '
        'median of {} interleaved rounds, file in the page cache. CPU: {}; '
        'Paddle {}.\n\n{}\n'.format(entries, size / 2**20, ROUNDS,
                                    info['cpu'], info['paddle'],
                                    '\n'.join(rows)))
    write_results('safe_loading', {'machine': info, 'entries': entries,
                                   'bytes': size, 'median_s': med,
                                   'all_s': times}, markdown)


if __name__ == '__main__':
    main()
