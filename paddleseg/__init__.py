"""A PaddleSeg-compatible semantic-segmentation framework whose flagship is CCNet.

Importing the package registers the built-in models, datasets and transforms,
so that configs can name them. It first sets Paddle's CPU threads to the usable
cores unless the user set ``OMP_NUM_THREADS`` (Paddle otherwise computes on one
CPU thread), and on AMD CPUs lets Paddle's MKL use its AVX2 kernels (see
``paddleseg.utils.runtime``).
"""

from .utils import runtime as _runtime

_runtime.fast_mkl_on_amd()
_runtime.default_cpu_threads()

from . import models, datasets, transforms  # noqa: E402,F401  (registration)

__version__ = '0.1.0'
