"""Custom operators: a functional wrapper plus a pure-Paddle reference per op.

``load_native()`` builds (once, cached) and registers the C++/CUDA operators;
call it before ``paddle.jit.load`` of a model exported with them.
"""

from .criss_cross_attention import (OpInputError, criss_cross_attention,
                                    criss_cross_attention_map,
                                    criss_cross_attention_reference)
from .native import NativeBuildError, load_native

__all__ = ['criss_cross_attention', 'criss_cross_attention_map',
           'criss_cross_attention_reference', 'load_native', 'OpInputError',
           'NativeBuildError']
