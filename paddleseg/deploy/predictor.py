"""Load an exported model for Paddle Inference: ``deploy.yaml`` (or the
``inference.yml`` of an export for FastDeploy), the model file (Paddle 3's
``.json`` or the legacy ``.pdmodel``) and the criss-cross attention operator
library when the graph uses it.
"""

import os

import paddle
import yaml
from paddle import inference

from paddleseg.ops import load_native
from paddleseg.ops.criss_cross_attention import OP_NAME
from paddleseg.ops.native import native_error
from paddleseg.utils import cli
from paddleseg.utils.errors import SegError
from paddleseg.utils.runtime import default_cpu_threads
from .export import DEPLOY_FILE, FD_DEPLOY_FILE, MODEL_FILE

__all__ = ['DeployConfig', 'uses_native_op', 'create_predictor',
           'add_predictor_args', 'check_predictor_args']

_LEGACY_MODEL = 'model.pdmodel'


class DeployConfig:
    """``deploy.yaml`` as PaddleSeg writes it (``Deploy: {model, params,
    transforms, input_shape, output_op, output_dtype}``), with paths made
    absolute.

    Args:
        path (str): ``deploy.yaml`` (or ``inference.yml``) or the folder
            holding it.

    Raises:
        SegError: a missing or malformed file, or model files that are not
            there.
    """

    def __init__(self, path):
        if os.path.isdir(path):
            fd = os.path.join(path, FD_DEPLOY_FILE)
            path = os.path.join(path, DEPLOY_FILE)
            if not os.path.isfile(path) and os.path.isfile(fd):
                path = fd
        if not os.path.isfile(path):
            raise SegError("Deploy config '{}' does not exist; pass the "
                           'deploy.yaml that export.py wrote.'.format(path))
        try:
            with open(path) as f:
                dic = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise SegError("Deploy config '{}' is not valid YAML ({}); "
                           're-export the model.'.format(path, e)) from None
        if not isinstance(dic, dict) or not isinstance(dic.get('Deploy'),
                                                       dict):
            raise SegError("Deploy config '{}' has no `Deploy` section; it "
                           'is not a deploy.yaml from export.py.'.format(path))
        self.path = path
        self.dic = dic['Deploy']
        self.dir = os.path.dirname(os.path.abspath(path))
        self.model_file = self._model_file()
        self.params_file = self._file('params', os.path.splitext(
            os.path.basename(self.model_file))[0] + '.pdiparams')

    def _file(self, key, default):
        path = os.path.join(self.dir, str(self.dic.get(key) or default))
        if not os.path.isfile(path):
            raise SegError("'{}' named by {}.{} in '{}' does not exist; "
                           're-export the model.'.format(
                               path, 'Deploy', key, self.path))
        return path

    def _model_file(self):
        """``Deploy.model``; a ``.pdmodel`` falls back to the ``.json`` of
        the same name beside it (PaddleSeg's --for_fd names
        ``inference.pdmodel`` even where Paddle 3 wrote ``inference.json``)
        and the other way round, then to ``model.json``/``model.pdmodel``."""
        name = str(self.dic.get('model') or MODEL_FILE)
        stem = os.path.splitext(name)[0]
        for candidate in (name, stem + '.json', stem + '.pdmodel', MODEL_FILE,
                          _LEGACY_MODEL):
            path = os.path.join(self.dir, candidate)
            if os.path.isfile(path):
                return path
        raise SegError("The model file '{}' named by Deploy.model in '{}' "
                       'does not exist (nor {}.json, {}.pdmodel, model.json '
                       'or model.pdmodel); re-export the model.'.format(
                           name, self.path, stem, stem))

    @property
    def transforms(self):
        return list(self.dic.get('transforms') or [{'type': 'Normalize'}])

    @property
    def output_op(self):
        return self.dic.get('output_op', 'argmax')

    @property
    def palette(self):
        return self.dic.get('palette')


def uses_native_op(model_file):
    """Whether the exported graph calls the native criss-cross attention
    operator (its library must then be loaded before the predictor is
    made)."""
    with open(model_file, 'rb') as f:
        return OP_NAME.encode() in f.read()


def load_op_library(model_file):
    """Load the operator library if ``model_file`` needs it.

    Raises:
        SegError: the model needs the operator and it cannot be built here.
    """
    if not uses_native_op(model_file):
        return
    if load_native() is None:
        raise SegError(
            "'{}' uses the native criss-cross attention operator, which "
            'cannot be built here ({}); re-export with --cca_backend '
            'reference.'.format(model_file, native_error()))


def add_predictor_args(parser):
    """The Paddle Inference flags of PaddleSeg's ``deploy/python/infer.py``
    (device, CPU threads, oneDNN, TensorRT, precision, logging)."""
    cli.add_device_arg(parser)
    parser.add_argument('--cpu_threads', type=int, default=None,
                        help='Default: $OMP_NUM_THREADS, else the core count.')
    parser.add_argument('--enable_mkldnn', type=cli.parse_bool, nargs='?',
                        const=True, default=True, help='oneDNN on CPU '
                        '(default True; --enable_mkldnn False turns it off).')
    parser.add_argument('--use_trt', type=cli.parse_bool, nargs='?',
                        const=True, default=False, help='TensorRT on GPU.')
    parser.add_argument('--precision', choices=['fp32', 'bf16', 'fp16',
                                                'int8'], default='fp32',
                        help='fp32; bf16 on CPUs with AVX512-BF16 or AMX '
                        '(paddle and openvino); fp16, int8 on GPU (paddle).')
    parser.add_argument('--min_subgraph_size', type=int, default=None,
                        help='Smallest subgraph TensorRT takes (default 3; '
                        'with --use_trt only).')
    parser.add_argument('--enable_auto_tune', type=cli.parse_bool, nargs='?',
                        const=True, default=False, help="Collect TensorRT's "
                        'dynamic shapes from the first 10 images first '
                        '(with --use_trt only).')
    parser.add_argument('--auto_tuned_shape_file', default=None,
                        help='Where the tuned shapes go (default '
                        'auto_tune_tmp.pbtxt, removed afterwards).')
    parser.add_argument('--print_detail', type=cli.parse_bool, nargs='?',
                        const=True, default=False, help="Show Paddle "
                        "Inference's own log (default False here; PaddleSeg's "
                        'default is True).')


def check_predictor_args(args):
    """Refuse TensorRT settings that cannot take effect, in one sentence.

    Raises:
        SegError: ``--use_trt`` off the GPU, or a TensorRT knob without it.
    """
    gpu = (args.device or ('gpu' if paddle.is_compiled_with_cuda()
                           else 'cpu')) == 'gpu'
    build = ('' if paddle.is_compiled_with_cuda() else
             ' (this Paddle build has no CUDA)')
    if args.use_trt and not gpu:
        raise SegError('--use_trt True: TensorRT runs on the GPU only{}; use '
                       'a paddlepaddle-gpu build with TensorRT and --device '
                       'gpu, or drop --use_trt.'.format(build))
    knobs = [flag for flag, given in (
        ('--min_subgraph_size', args.min_subgraph_size is not None),
        ('--enable_auto_tune True', args.enable_auto_tune),
        ('--auto_tuned_shape_file', args.auto_tuned_shape_file is not None))
        if given]
    if knobs and not args.use_trt:
        raise SegError('{} only applies to TensorRT, which this run does not '
                       'use{}; add --device gpu --use_trt True on a '
                       'paddlepaddle-gpu build with TensorRT, or drop it.'
                       .format(', '.join(knobs), build))
    if args.auto_tuned_shape_file is not None and not args.enable_auto_tune:
        raise SegError('--auto_tuned_shape_file is where --enable_auto_tune '
                       'True writes the shapes it collects; add that flag or '
                       'drop this one.')


def create_predictor(deploy, device='cpu', cpu_threads=None,
                     enable_mkldnn=True, use_trt=False, precision='fp32',
                     min_subgraph_size=3, tuned_shapes=None,
                     collect_shapes=None, print_detail=False):
    """A Paddle Inference predictor for a :class:`DeployConfig`.

    Args:
        deploy (DeployConfig): The exported model.
        device (str): ``cpu`` or ``gpu``.
        cpu_threads (int, optional): Math library threads on CPU (default:
            ``$OMP_NUM_THREADS`` or the number of cores).
        enable_mkldnn (bool): oneDNN on CPU.
        use_trt (bool): TensorRT on GPU.
        precision (str): ``fp32``; on CPU also ``bf16`` (oneDNN's bfloat16
            kernels), on GPU ``fp16``, and ``int8`` with TensorRT.
        min_subgraph_size (int): Smallest subgraph TensorRT takes.
        tuned_shapes (str, optional): TensorRT's dynamic shapes collected by
            a predictor made with ``collect_shapes`` (else PaddleSeg's fixed
            range, 100x100 to 2000x3000).
        collect_shapes (str, optional): Record the input shapes of every
            subgraph into this file (GPU, no TensorRT).
        print_detail (bool): Keep Paddle Inference's own log.

    The GPU branches are untested here (no Paddle GPU build).
    """
    load_op_library(deploy.model_file)
    config = inference.Config(deploy.model_file, deploy.params_file)
    if not print_detail:
        config.disable_glog_info()
    if device == 'gpu':
        _setup_gpu(config, use_trt, precision, min_subgraph_size,
                   tuned_shapes, collect_shapes)
    else:
        _setup_cpu(config, cpu_threads, enable_mkldnn, precision)
    try:
        return inference.create_predictor(config)
    except Exception as e:  # Paddle raises bare RuntimeErrors here
        raise SegError("Paddle Inference cannot load '{}' ({}); re-export "
                       'the model with this Paddle version.'.format(
                           deploy.model_file, str(e).strip()[:300])) from e


def _setup_cpu(config, cpu_threads, enable_mkldnn, precision):
    """Threads, oneDNN and its bfloat16 kernels (``precision='bf16'``, on
    CPUs with AVX512-BF16 or AMX: the caller checks the CPU)."""
    if precision not in ('fp32', 'bf16'):
        raise SegError('--precision {} needs --device gpu; on CPU the model '
                       'runs in fp32 or bf16.'.format(precision))
    if precision == 'bf16' and not enable_mkldnn:
        raise SegError('--precision bf16 on CPU runs in oneDNN; drop '
                       '--enable_mkldnn False.')
    config.disable_gpu()
    config.set_cpu_math_library_num_threads(
        int(cpu_threads or default_cpu_threads()))
    if enable_mkldnn:
        config.enable_onednn()
        if precision == 'bf16':
            config.enable_onednn_bfloat16()
    else:
        config.disable_onednn()


def _setup_gpu(config, use_trt, precision, min_subgraph_size=3,
               tuned_shapes=None, collect_shapes=None):
    if not paddle.is_compiled_with_cuda():
        raise SegError('--device gpu was requested but this Paddle build has '
                       'no CUDA; install paddlepaddle-gpu or use --device '
                       'cpu.')
    kinds = {'fp32': inference.PrecisionType.Float32,
             'fp16': inference.PrecisionType.Half,
             'int8': inference.PrecisionType.Int8}
    if precision == 'int8' and not use_trt:
        raise SegError('--precision int8 needs --use_trt (TensorRT '
                       'calibration); use fp32 or fp16 without it.')
    config.enable_use_gpu(256, 0, kinds[precision])
    if collect_shapes:
        config.collect_shape_range_info(collect_shapes)
    if use_trt:
        config.enable_tensorrt_engine(
            workspace_size=1 << 30, max_batch_size=1,
            min_subgraph_size=min_subgraph_size,
            precision_mode=kinds[precision], use_static=False,
            use_calib_mode=precision == 'int8')
        if tuned_shapes:
            config.enable_tuned_tensorrt_dynamic_shape(tuned_shapes, True)
        else:  # PaddleSeg's range for an input of any size
            config.set_trt_dynamic_shape_info(
                {'x': [1, 3, 100, 100]}, {'x': [1, 3, 2000, 3000]},
                {'x': [1, 3, 512, 1024]})
