"""Component registries: the names a YAML config may use under ``type:``.

Each registry maps a class (or function) name to the object itself. Components
register with a decorator::

    from paddleseg.cvlibs import manager

    @manager.BACKBONES.add_component
    class ResNet50_vd(nn.Layer):
        ...

Registering a name twice is an error that names both modules (a silent
overwrite is how two forks of one model end up trained under one name), and an
unknown name lists what is registered, the closest matches and the package
that must be imported for more components to register.

Name lookup lives here too, for the config checker and the builder alike:
:func:`find_component` (a ``type:`` name in one registry or any),
:data:`REGISTRY_BY_KEY` (which registry a config key draws from),
:func:`dataset_attr` (a dataset's ``num_classes``/``ignore_index`` from its
config or class), and :func:`optimizer_class` / :func:`lr_scheduler_class`
(the Paddle classes ``optimizer.type`` and ``lr_scheduler.type`` name).
"""

import difflib
import inspect

import paddle

from paddleseg.utils.errors import ConfigError

__all__ = ['ComponentManager', 'MODELS', 'BACKBONES', 'DATASETS', 'TRANSFORMS',
           'LOSSES', 'ALL_REGISTRIES', 'REGISTRY_BY_KEY', 'find_component',
           'dataset_attr', 'optimizer_class', 'lr_scheduler_class']


class ComponentManager:
    """A named registry of components.

    Args:
        name (str): Registry name used in messages, e.g. ``"models"``.
        package (str): The package whose import registers the built-in
            components of this kind; named in "not registered" messages.
    """

    def __init__(self, name, package='paddleseg'):
        self._name = name
        self._package = package
        self._components = {}

    @property
    def name(self):
        return self._name

    @property
    def components_dict(self):
        """The registered components, keyed by name (a copy)."""
        return dict(self._components)

    def __len__(self):
        return len(self._components)

    def __contains__(self, key):
        return key in self._components

    def __repr__(self):
        return '{}({}: {})'.format(type(self).__name__, self._name,
                                   sorted(self._components))

    def __getitem__(self, key):
        if key not in self._components:
            raise KeyError(self._not_found_message(key))
        return self._components[key]

    def get(self, key, default=None):
        return self._components.get(key, default)

    def _not_found_message(self, key):
        names = sorted(self._components)
        close = difflib.get_close_matches(str(key), names, n=3, cutoff=0.5)
        hint = ('Did you mean {}? '.format(' or '.join(map(repr, close)))
                if close else '')
        return ("'{}' is not registered in {}. {}Registered: {}. A custom "
                "component registers when its module is imported (built-in "
                "ones by `import {}`).".format(
                    key, self._name, hint, ', '.join(names) or 'none',
                    self._package))

    def add_component(self, components):
        """Register a class or function (or a list of them) under its name.

        Usable as a decorator. Returns its argument unchanged.

        Raises:
            TypeError: if a component is neither a class nor a function.
            KeyError: if the name is already registered by another object.
        """
        if isinstance(components, (list, tuple)):
            for component in components:
                self._add_single(component)
        else:
            self._add_single(components)
        return components

    def _add_single(self, component):
        if not (inspect.isclass(component) or inspect.isfunction(component)):
            raise TypeError(
                '{} can only register classes or functions, got {!r} of type '
                '{}.'.format(self._name, component, type(component).__name__))
        name = component.__name__
        existing = self._components.get(name)
        if existing is not None and existing is not component:
            # Re-importing the same module (e.g. under importlib.reload) gives
            # an object from the same place; that is not a conflict.
            if _origin(existing) != _origin(component):
                raise KeyError(
                    "'{}' is already registered in {} by {}; {} tries to "
                    "register it again. Rename one of them.".format(
                        name, self._name, _origin(existing),
                        _origin(component)))
        self._components[name] = component


def _origin(obj):
    return '{}.{}'.format(obj.__module__, obj.__qualname__)


MODELS = ComponentManager('models', 'paddleseg.models')
BACKBONES = ComponentManager('backbones', 'paddleseg.models')
DATASETS = ComponentManager('datasets', 'paddleseg.datasets')
TRANSFORMS = ComponentManager('transforms', 'paddleseg.transforms')
LOSSES = ComponentManager('losses', 'paddleseg.models')
ALL_REGISTRIES = (MODELS, BACKBONES, LOSSES, DATASETS, TRANSFORMS)
# Which registry a component at a config key comes from; other nested
# ``type:`` dicts are looked up in every registry.
REGISTRY_BY_KEY = {
    'model': MODELS, 'backbone': BACKBONES, 'train_dataset': DATASETS,
    'val_dataset': DATASETS, 'test_dataset': DATASETS,
    'transforms': TRANSFORMS, 'types': LOSSES, 'losses': LOSSES,
}


def find_component(name, registry=None):
    """The registered object called ``name`` (in ``registry``, else in any
    registry), or None."""
    for reg in ([registry] if registry is not None else []) + list(
            ALL_REGISTRIES):
        if name in reg:
            return reg[name]
    return None


def dataset_attr(dataset_cfg, key, class_attr, default=None):
    """A dataset's ``num_classes``/``ignore_index``: from its config or class.

    Args:
        dataset_cfg (dict | None): The dataset's config.
        key (str): The config key (``num_classes``).
        class_attr (str): The class attribute (``NUM_CLASSES``).
        default: The value when a dataset is configured but names none.
    """
    if not isinstance(dataset_cfg, dict):
        return None
    if key in dataset_cfg:
        return dataset_cfg[key]
    cls = find_component(dataset_cfg.get('type'), DATASETS)
    value = getattr(cls, class_attr, None)
    return default if value is None else value


def _paddle_classes(module, base):
    """Names of the public subclasses of ``base`` in ``module``."""
    return sorted(n for n in dir(module)
                  if inspect.isclass(getattr(module, n)) and
                  issubclass(getattr(module, n), base) and
                  getattr(module, n) is not base)


def optimizer_class(opt_cfg):
    """The ``paddle.optimizer`` class named by ``optimizer.type``.

    PaddleSeg's ``SGD`` with a ``momentum`` argument means ``Momentum``.
    """
    name = opt_cfg.get('type', 'SGD')
    if name.lower() == 'sgd':
        name = 'Momentum' if 'momentum' in opt_cfg else 'SGD'
    base = paddle.optimizer.Optimizer
    cls = getattr(paddle.optimizer, name, None)
    if not inspect.isclass(cls) or not issubclass(cls, base) or cls is base:
        raise ConfigError('optimizer.type {!r} is not a paddle.optimizer '
                          'class; use one of {}.'.format(
                              name, ', '.join(_paddle_classes(
                                  paddle.optimizer, base))))
    return cls


def lr_scheduler_class(sched_cfg):
    """The ``paddle.optimizer.lr`` class named by ``lr_scheduler.type``."""
    name = sched_cfg.get('type', 'PolynomialDecay')
    base = paddle.optimizer.lr.LRScheduler
    cls = getattr(paddle.optimizer.lr, name, None)
    if not inspect.isclass(cls) or not issubclass(cls, base) or cls is base:
        raise ConfigError('lr_scheduler.type {!r} is not a paddle.optimizer.lr '
                          'class; use one of {}.'.format(
                              name, ', '.join(_paddle_classes(
                                  paddle.optimizer.lr, base))))
    return cls
