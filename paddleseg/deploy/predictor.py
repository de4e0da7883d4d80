"""Load an exported model for Paddle Inference: ``deploy.yaml``, the model
file (Paddle 3's ``model.json`` or the legacy ``model.pdmodel``) and the
criss-cross attention operator library when the graph uses it.
"""

import os

import paddle
import yaml
from paddle import inference

from paddleseg.ops import load_native
from paddleseg.ops.criss_cross_attention import OP_NAME
from paddleseg.ops.native import native_error
from paddleseg.utils.errors import SegError
from paddleseg.utils.runtime import default_cpu_threads
from .export import DEPLOY_FILE, MODEL_FILE, PARAMS_FILE

__all__ = ['DeployConfig', 'uses_native_op', 'create_predictor']

_LEGACY_MODEL = 'model.pdmodel'


class DeployConfig:
    """``deploy.yaml`` as PaddleSeg writes it (``Deploy: {model, params,
    transforms, input_shape, output_op, output_dtype}``), with paths made
    absolute.

    Args:
        path (str): ``deploy.yaml`` or the folder holding it.

    Raises:
        SegError: a missing or malformed file, or model files that are not
            there.
    """

    def __init__(self, path):
        if os.path.isdir(path):
            path = os.path.join(path, DEPLOY_FILE)
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
        self.params_file = self._file('params', PARAMS_FILE)

    def _file(self, key, default):
        path = os.path.join(self.dir, str(self.dic.get(key) or default))
        if not os.path.isfile(path):
            raise SegError("'{}' named by {}.{} in '{}' does not exist; "
                           're-export the model.'.format(
                               path, 'Deploy', key, self.path))
        return path

    def _model_file(self):
        """``Deploy.model``; a ``.pdmodel`` written by an older export falls
        back to ``model.json`` beside it and the other way round."""
        name = str(self.dic.get('model') or MODEL_FILE)
        for candidate in (name, MODEL_FILE, _LEGACY_MODEL):
            path = os.path.join(self.dir, candidate)
            if os.path.isfile(path):
                return path
        raise SegError("The model file '{}' named by Deploy.model in '{}' "
                       'does not exist (nor model.json or model.pdmodel); '
                       're-export the model.'.format(name, self.path))

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


def create_predictor(deploy, device='cpu', cpu_threads=None,
                     enable_mkldnn=True, use_trt=False, precision='fp32'):
    """A Paddle Inference predictor for a :class:`DeployConfig`.

    Args:
        deploy (DeployConfig): The exported model.
        device (str): ``cpu`` or ``gpu``.
        cpu_threads (int, optional): Math library threads on CPU (default:
            ``$OMP_NUM_THREADS`` or the number of cores).
        enable_mkldnn (bool): oneDNN on CPU.
        use_trt (bool): TensorRT on GPU.
        precision (str): ``fp32``; on GPU also ``fp16``, and ``int8`` with
            TensorRT. The GPU branch is untested here (no Paddle GPU build).
    """
    load_op_library(deploy.model_file)
    config = inference.Config(deploy.model_file, deploy.params_file)
    config.disable_glog_info()
    if device == 'gpu':
        _setup_gpu(config, use_trt, precision)
    else:
        if precision != 'fp32':
            raise SegError('--precision {} needs --device gpu; on CPU the '
                           'model runs in fp32.'.format(precision))
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(
            int(cpu_threads or default_cpu_threads()))
        if enable_mkldnn:
            config.enable_onednn()
        else:
            config.disable_onednn()
    try:
        return inference.create_predictor(config)
    except Exception as e:  # Paddle raises bare RuntimeErrors here
        raise SegError("Paddle Inference cannot load '{}' ({}); re-export "
                       'the model with this Paddle version.'.format(
                           deploy.model_file, str(e).strip()[:300])) from e


def _setup_gpu(config, use_trt, precision):
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
    if use_trt:
        config.enable_tensorrt_engine(
            workspace_size=1 << 30, max_batch_size=1, min_subgraph_size=3,
            precision_mode=kinds[precision], use_static=False,
            use_calib_mode=precision == 'int8')
