"""Built-in models; importing this package registers them.

The model contract
==================

Every model registered in ``manager.MODELS`` follows these rules, so that a
config can train it, ``val.py``/``predict.py`` can evaluate it, and its
exported program runs in Paddle Inference on CPU with oneDNN (Paddle's
default there) and converts to ONNX. ``tests/models/test_models_smoke.py``
enforces them on every registered model: a model that breaks one cannot land.

1. **Construction.** Plain keyword arguments, ``num_classes`` first; the
   backbone (and any other sub-component) arrives already built; no argument
   is a config object. ``pretrained`` (a path or URL of whole-model weights)
   loads with :func:`paddleseg.utils.weights.load_entire_model` at the end of
   ``__init__``. Where a PaddleSeg model of the same name exists, the
   arguments, defaults, sub-layer and parameter names are PaddleSeg's, so its
   configs and ``.pdparams`` load unchanged.
2. **Outputs.** ``forward(x)`` returns a list of ``(N, num_classes, H, W)``
   logits at the size of ``x``, the main prediction first. In training the
   list holds every output a loss is meant for, in a documented order (one
   ``loss.types`` entry and one ``coef`` per output); in evaluation
   (``self.training`` False) it holds only the main logits.
3. **Static-graph forms** (Paddle Inference 3.3 on CPU with oneDNN fails on
   the stock forms; ``paddleseg/models/layers`` has the replacements):

   - resize with :func:`layers.resize_bilinear` and take sizes with
     :func:`layers.spatial_size`, never ``F.interpolate``/``nn.Upsample``
     (oneDNN's ``bilinear_interp`` fails when the predictor starts);
   - LeakyReLU with :class:`layers.LeakyReLU` (or ``act_type='leakyrelu'``),
     never ``nn.LeakyReLU``/``F.leaky_relu`` (conv + batch norm + leaky_relu
     crashes oneDNN's fusion pass);
   - no ``paddle.diag`` (paddle2onnx aborts on it) and no ``einsum`` in a
     static graph (oneDNN crashes lowering it);
   - no Python value read off a tensor in ``forward`` (``int(x.shape[2])``
     is -1 in a static graph with dynamic sizes; use ``spatial_size``).
4. **Export.** ``paddle.jit.to_static`` with ``full_graph=True`` and an input
   of any height and width traces it; the exported program labels the same
   pixels as the eager model, with oneDNN on and off; paddle2onnx converts it
   (custom operators, such as the native criss-cross attention, have a
   pure-Paddle path that export selects).
5. **A tiny instance** in ``tests/models/test_models_smoke.py`` (``TINY``):
   it must build in well under a second, train a step in which every
   parameter gets a finite gradient, and export.
"""

from . import backbones, heads, layers, losses  # noqa: F401
from .acfnet import ACFNet  # noqa: F401
from .ccnet import CCNet  # noqa: F401
from .fcn import FCN  # noqa: F401
from .mscale_ocrnet import MscaleOCRNet  # noqa: F401
from .ocrnet import OCRNet  # noqa: F401
