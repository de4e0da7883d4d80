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
"""

import difflib
import inspect

__all__ = ['ComponentManager', 'MODELS', 'BACKBONES', 'DATASETS', 'TRANSFORMS',
           'LOSSES']


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
