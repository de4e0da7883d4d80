"""Building components from a validated :class:`Config`.

``SegBuilder(cfg).model / .train_dataset / .val_dataset / .optimizer / .loss /
.lr_scheduler`` as in PaddleSeg. Everything is built by one recursive function,
:func:`build_component`: nested ``type:`` dicts are built first and handed to
their parent already built, and a constructor's error is re-raised with the
config path and the type name.
"""

import functools
import inspect

import paddle

from paddleseg.utils import logger
from paddleseg.utils.errors import ConfigError, SegError
from . import manager
from .manager import (REGISTRY_BY_KEY, dataset_attr, find_component,
                      lr_scheduler_class, optimizer_class)

__all__ = ['SegBuilder', 'build_component', 'build_transforms', 'BuildError']


class BuildError(SegError):
    """A component's constructor failed; the message names the config path."""


def build_component(cfg, key, registry=None, defaults=None):
    """Build ``cfg`` (``{type: Name, **kwargs}``) found at config path ``key``.

    Args:
        cfg (dict): The component's config.
        key (str): Its path in the config, for messages (``model.backbone``).
        registry (ComponentManager, optional): Where ``type`` must be found;
            any registry when None.
        defaults (dict, optional): Keyword arguments used when the config does
            not give them and the constructor accepts them (e.g. the dataset's
            ``num_classes`` for the model). They reach nested components of
            the same registry too (the losses inside a ``MixedLoss``), not
            those of another (a model's backbone).
    """
    name = cfg['type']
    component = find_component(name, registry)
    if component is None:
        reg = registry or manager.MODELS
        raise ConfigError('{}: {}'.format(key, reg._not_found_message(name)))
    kwargs = {}
    for arg, value in cfg.items():
        if arg == 'type':
            continue
        child = '{}.{}'.format(key, arg)
        sub_registry = REGISTRY_BY_KEY.get(arg)
        sub_defaults = defaults if (registry is not None and
                                    sub_registry is registry) else None
        if isinstance(value, dict) and 'type' in value:
            value = build_component(value, child, sub_registry, sub_defaults)
        elif isinstance(value, list) and any(
                isinstance(v, dict) and 'type' in v for v in value):
            value = [
                build_component(v, '{}[{}]'.format(child, i), sub_registry,
                                sub_defaults)
                if isinstance(v, dict) and 'type' in v else v
                for i, v in enumerate(value)
            ]
        kwargs[arg] = value
    params = inspect.signature(component).parameters
    for arg, value in (defaults or {}).items():
        if arg in params and arg not in kwargs and value is not None:
            kwargs[arg] = value
    try:
        return component(**kwargs)
    except SegError:
        raise
    except Exception as e:
        raise BuildError('Building {} (type {}) failed: {}: {}'.format(
            key, name, type(e).__name__, e)) from e


def build_transforms(items, key):
    """The transforms of the configs ``items`` found at config path ``key``
    (``val_dataset.transforms``), built, as a list (wrap it in
    ``paddleseg.transforms.Compose`` to run it)."""
    return [build_component(t, '{}[{}]'.format(key, i), manager.TRANSFORMS)
            for i, t in enumerate(items)]


class SegBuilder:
    """Builds (once each, lazily) what a config describes.

    Args:
        config (Config): A loaded config.
    """

    def __init__(self, config):
        self.config = config
        self.dic = config.dic

    @functools.cached_property
    def train_dataset(self):
        return self._dataset('train_dataset')

    @functools.cached_property
    def val_dataset(self):
        return self._dataset('val_dataset')

    def _dataset(self, key):
        cfg = self.dic.get(key)
        if not cfg:
            return None
        return build_component(cfg, key, manager.DATASETS)

    @functools.cached_property
    def val_transforms(self):
        """The validation transforms, built without the dataset (predicting
        needs no dataset on disk), as a list; wrap it in a ``Compose``."""
        cfg = self.dic.get('val_dataset') or {}
        items = cfg.get('transforms') or [{'type': 'Normalize'}]
        return build_transforms(items, 'val_dataset.transforms')

    @property
    def palette(self):
        """The validation dataset class's ``PALETTE`` (None if it has none)."""
        cfg = self.dic.get('val_dataset') or {}
        return getattr(find_component(cfg.get('type'), manager.DATASETS),
                       'PALETTE', None)

    def _dataset_attr(self, attr, class_attr, default=None):
        for key in ('train_dataset', 'val_dataset'):
            value = dataset_attr(self.dic.get(key), attr, class_attr, default)
            if value is not None:
                return value
        return None

    @functools.cached_property
    def model(self):
        cfg = self.dic.get('model')
        if not cfg:
            raise ConfigError('{} has no `model` section; add one with a '
                              '`type`.'.format(self.config.path))
        num_classes = self._dataset_attr('num_classes', 'NUM_CLASSES')
        return build_component(cfg, 'model', manager.MODELS,
                               defaults={'num_classes': num_classes})

    @functools.cached_property
    def loss(self):
        """``{'types': [loss objects], 'coef': [floats]}`` (PaddleSeg's form).

        Every loss (nested ones included) whose constructor takes
        ``ignore_index`` or ``num_classes`` and whose config does not give it
        gets the dataset's, so a 2-class dataset never meets RMILoss's
        default of 19 (PaddleSeg#3020).
        """
        cfg = self.dic.get('loss')
        if not cfg:
            raise ConfigError('{} has no `loss` section; add e.g. `loss: {{'
                              'types: [{{type: CrossEntropyLoss}}], coef: [1]}}`.'
                              .format(self.config.path))
        defaults = {
            'ignore_index': self._dataset_attr('ignore_index', 'IGNORE_INDEX',
                                               255),
            'num_classes': self._dataset_attr('num_classes', 'NUM_CLASSES'),
        }
        types = [
            build_component(item, 'loss.types[{}]'.format(i), manager.LOSSES,
                            defaults=defaults)
            for i, item in enumerate(cfg['types'])
        ]
        return {'types': types, 'coef': [float(c) for c in cfg['coef']]}

    @functools.cached_property
    def lr_scheduler(self):
        cfg = dict(self.dic.get('lr_scheduler') or {})
        cls = lr_scheduler_class(cfg)
        cfg.pop('type', None)
        warmup_iters = cfg.pop('warmup_iters', 0) or 0
        warmup_start_lr = cfg.pop('warmup_start_lr', 0.0)
        if 'learning_rate' not in cfg:
            raise ConfigError('lr_scheduler.learning_rate is missing in {}; set '
                              'it (e.g. 0.01) or pass --learning_rate.'.format(
                                  self.config.path))
        warmup_iters = self._warmup_within_run(warmup_iters)
        if cls is paddle.optimizer.lr.PolynomialDecay:
            cfg.setdefault('decay_steps',
                           max(1, (self.config.iters or 0) - warmup_iters))
            cfg.setdefault('end_lr', 0.0)
        try:
            scheduler = cls(**cfg)
        except (TypeError, ValueError) as e:
            raise ConfigError('lr_scheduler ({}) in {} cannot be built: {}.'
                              .format(cls.__name__, self.config.path, e)) from e
        if warmup_iters > 0:
            scheduler = paddle.optimizer.lr.LinearWarmup(
                learning_rate=scheduler, warmup_steps=warmup_iters,
                start_lr=warmup_start_lr, end_lr=cfg['learning_rate'])
        return scheduler

    def _warmup_within_run(self, warmup_iters):
        """``warmup_iters``, or ``iters`` when the run is not longer than
        its warm-up (``--iters 3`` on a shipped config: warm up over the
        whole run rather than refuse the first thing a user tries)."""
        iters = self.config.iters
        if iters and warmup_iters >= iters:
            logger.warning(
                'lr_scheduler.warmup_iters (%d) is not smaller than iters (%d) '
                'in %s: the learning rate warms up over the whole run.',
                warmup_iters, iters, self.config.path)
            return iters
        return warmup_iters

    @functools.cached_property
    def optimizer(self):
        cfg = dict(self.dic.get('optimizer') or {'type': 'SGD'})
        cls = optimizer_class(cfg)
        cfg.pop('type', None)
        try:
            return cls(learning_rate=self.lr_scheduler,
                       parameters=self.model.parameters(), **cfg)
        except (TypeError, ValueError) as e:
            raise ConfigError('optimizer ({}) in {} cannot be built: {}.'.format(
                cls.__name__, self.config.path, e)) from e
