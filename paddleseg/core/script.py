"""The start that the root scripts and tools share: config, device, model.

``val.py``, ``predict.py``, ``export.py``, ``tools/export_onnx.py`` and
``tools/visualize_attention.py`` all begin the same way; doing it in one
place keeps their order (the device chosen and the process group joined
before anything can fail or any tensor exists) and their messages the same.
"""

import collections

from paddleseg.cvlibs import Config, SegBuilder
from paddleseg.utils import env
from paddleseg.utils.weights import load_entire_model

__all__ = ['TrainedModel', 'load_trained_model']

TrainedModel = collections.namedtuple('TrainedModel',
                                      'config builder model device')


def load_trained_model(args, check_model=None):
    """Load ``args.config`` (with ``args.opts``), select ``args.device``,
    join the process group of a distributed launch, build the model and
    load ``args.model_path`` into it (every parameter must be set: a
    checkpoint of another model is refused, not evaluated half-random).

    Args:
        args (argparse.Namespace): With ``config``, ``opts``, ``device`` and
            ``model_path`` (see :func:`paddleseg.utils.cli.add_common_args`),
            and ``device_id`` where the script has it.
        check_model (callable, optional): ``check_model(model)`` runs before
            the weights are read (a tool that needs a kind of model refuses
            the wrong one with its own message, not a weights mismatch).

    Returns:
        TrainedModel: ``(config, builder, model, device)``; ``device`` is
        ``'cpu'`` or ``'gpu'``.
    """
    device = env.set_device(args.device, getattr(args, 'device_id', None))
    env.init_distributed()  # before anything can fail: see its docstring
    cfg = Config(args.config, opts=args.opts)
    builder = SegBuilder(cfg)
    model = builder.model
    if check_model is not None:
        check_model(model)
    load_entire_model(model, args.model_path, strict=True)
    return TrainedModel(cfg, builder, model, device)
