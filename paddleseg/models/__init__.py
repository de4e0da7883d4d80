"""Built-in models; importing this package registers them."""

from . import backbones, heads, layers, losses  # noqa: F401
from .ccnet import CCNet  # noqa: F401
from .fcn import FCN  # noqa: F401
