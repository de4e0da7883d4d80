"""Export a trained model to ONNX and check it against Paddle.

    python tools/export_onnx.py \\
        --config configs/quick_start/ccnet_resnet18_demo.yml \\
        --model_path output/demo/best_model/model.pdparams \\
        --save_file output/demo/model.onnx

Exports the static Paddle program as ``export.py`` does (criss-cross
attention always as the pure-Paddle reference: the native operator has no
ONNX form), converts it with paddle2onnx in a child process, then runs the
ONNX model with onnxruntime and the Paddle program on one random input and
prints how far apart they are; it fails above a relative error of 1e-4
(softmax, none) or below 99.9% equal pixels (argmax). Needs the optional
``pip install paddle2onnx onnxruntime`` (``pip install -e .[onnx]``).
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paddleseg.deploy.export import add_export_args  # noqa: E402
from paddleseg.utils import cli  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    cli.add_common_args(p)
    p.add_argument('--model_path', required=True,
                   help='model.pdparams (or a folder holding it).')
    p.add_argument('--save_file', default='output/model.onnx',
                   help='The .onnx file to write.')
    add_export_args(p)
    p.add_argument('--opset_version', type=int, default=13,
                   help='ONNX opset (raised by paddle2onnx where an operator '
                   'needs a newer one).')
    p.add_argument('--check_size', nargs=2, type=int, default=[256, 512],
                   metavar=('H', 'W'),
                   help='Height and width of the check input where the '
                   'input shape has -1 (N -1 becomes 1).')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from paddleseg.deploy import onnx as onnx_export
    onnx_export.require_onnx_tools()
    from paddleseg.core.script import load_trained_model
    from paddleseg.deploy.export import export_settings
    from paddleseg.utils import logger

    cfg, builder, model, _ = load_trained_model(args)
    transforms, input_shape, output_op = export_settings(
        cfg, args.input_shape, args.output_op)
    with tempfile.TemporaryDirectory(prefix='paddleseg_onnx_') as model_dir:
        onnx_export.export_for_onnx(model, model_dir, transforms, input_shape,
                                    output_op, palette=builder.palette)
        start = time.time()
        output = onnx_export.convert_to_onnx(
            model_dir, args.save_file, args.opset_version,
            name="the export of '{}' ({})".format(args.model_path,
                                                 args.config))
        if args.debug:
            print(output, flush=True)
        logger.info('Converted to ONNX (opset %s) in %.1f s: %s',
                    onnx_export.used_opset(output), time.time() - start,
                    args.save_file)
        print(onnx_export.check_onnx(
            args.save_file, model_dir,
            onnx_export.check_shape(input_shape, args.check_size), output_op),
            flush=True)


if __name__ == '__main__':
    cli.run(main)
