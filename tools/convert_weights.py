"""Convert model weights between .pdparams and .safetensors.

    python tools/convert_weights.py --input model.pdparams --output model.safetensors
    python tools/convert_weights.py --input model.safetensors --output model.pdparams

The input is read without running code from it (a .pdparams through the
restricted unpickler of paddleseg.utils.safe_pickle, which refuses a file
that asks to run anything); a .safetensors file cannot carry code at all, so
it is the format to share weights in. --model_path, pretrained: and
export.py take either. The output is written atomically.
"""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run from a checkout without pip install
    sys.path.insert(0, ROOT)

from paddleseg.utils import cli  # noqa: E402
from paddleseg.utils.errors import SegError  # noqa: E402

FORMATS = ('.pdparams', '.safetensors')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--input', required=True,
                   help='A .pdparams or .safetensors file (or a folder '
                   'holding model.pdparams).')
    p.add_argument('--output', required=True,
                   help='The .pdparams or .safetensors file to write.')
    p.add_argument('--debug', action='store_true',
                   help='Show full tracebacks for errors.')
    return p.parse_args(argv)


def convert(source, target):
    """Write the weights of ``source`` to ``target`` in the format its name
    ends with; returns how many arrays were written."""
    import paddle
    from paddleseg.utils.fileio import atomic_path
    from paddleseg.utils.weights import load_state_dict, write_safetensors
    if not target.endswith(FORMATS):
        raise SegError("--output '{}' must end with .pdparams or "
                       '.safetensors.'.format(target))
    state = load_state_dict(source)
    if os.path.dirname(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
    if target.endswith('.safetensors'):
        write_safetensors(state, target)
    else:
        with atomic_path(target) as tmp:
            paddle.save(state, tmp)
    return len(state)


def main(argv=None):
    args = parse_args(argv)
    count = convert(args.input, args.output)
    print('Wrote {} arrays to {}.'.format(count, args.output))


if __name__ == '__main__':
    cli.run(main)
