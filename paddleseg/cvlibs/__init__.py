"""Registry, config loading and validation, and the component builder."""

from . import manager
from .config import Config
from .builder import SegBuilder

__all__ = ['manager', 'Config', 'SegBuilder']
