"""A PaddleSeg-compatible semantic-segmentation framework whose flagship is CCNet.

Importing the package registers the built-in models, datasets and transforms,
so that configs can name them.
"""

from . import models, datasets, transforms  # noqa: F401  (registration)

__version__ = '0.1.0'
