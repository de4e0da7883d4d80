"""Loading PaddleSeg-format YAML configs: ``_base_`` inheritance, overrides, validation.

The format is PaddleSeg's, unchanged::

    _base_: '../_base_/cityscapes.yml'     # a string or a list; paths relative to this file
    batch_size: 2
    model:
      type: CCNet
      backbone: {type: ResNet101_vd, output_stride: 8}

Bases merge recursively with the child winning; a child dict holding
``_inherited_: False`` replaces the base's dict instead of merging into it;
lists always replace. ``opts`` (``--opts a.b=c``) and the ``--iters``,
``--batch_size`` and ``--learning_rate`` shortcuts apply after merging, and the
result is validated (see :mod:`paddleseg.cvlibs.config_checker`) before
anything is built.
"""

import ast
import codecs
import copy
import os

import yaml

from paddleseg.utils.errors import ConfigError
from . import config_checker

__all__ = ['Config', 'parse_opts', 'merge_config_dicts']

_BASE_KEY = '_base_'
_INHERITED_KEY = '_inherited_'
# Far beyond any real chain (PaddleSeg's deepest is 3), well within Python's
# recursion limit.
_MAX_BASE_DEPTH = 64


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping
    (PyYAML keeps the last one silently: a copied block that overrides an
    earlier setting unseen)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: PyYAML reports it
                continue
            if first != key_node.start_mark.line + 1:
                raise yaml.constructor.ConstructorError(
                    None, None, 'key {!r} is given twice (lines {} and {}); '
                    'keep one'.format(key, first,
                                      key_node.start_mark.line + 1),
                    key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


class Config:
    """A merged, validated config.

    Args:
        path (str): The YAML file.
        learning_rate (float, optional): Overrides ``lr_scheduler.learning_rate``.
        batch_size (int, optional): Overrides ``batch_size``.
        iters (int, optional): Overrides ``iters``.
        opts (list[str], optional): ``key.sub=value`` overrides; values are
            Python/YAML literals (``8``, ``1.0e-4``, ``[512, 512]``, ``True``).
        validate (bool): Run the schema and the cross-field rules.

    Attributes:
        dic (dict): The merged config dict.
        path (str): The file it was loaded from.

    Raises:
        ConfigError: The file is missing or not valid YAML, a key or value is
            wrong, or a cross-field rule fails.
    """

    def __init__(self, path, learning_rate=None, batch_size=None, iters=None,
                 opts=None, validate=True):
        if not path or not os.path.isfile(path):
            raise ConfigError(
                'Config file {!r} does not exist; pass the path of a .yml file '
                '(e.g. configs/quick_start/fcn_resnet18_demo.yml).'.format(path))
        if not path.endswith(('.yml', '.yaml')):
            raise ConfigError(
                'Config file {!r} is not a .yml/.yaml file; only YAML configs '
                'are supported.'.format(path))
        self.path = path
        dic = load_with_base(path)
        if iters is not None:
            dic['iters'] = iters
        if batch_size is not None:
            dic['batch_size'] = batch_size
        if learning_rate is not None:
            dic.setdefault('lr_scheduler', {})['learning_rate'] = learning_rate
        for opt in opts or []:
            key, value = parse_opts(opt)
            _set_by_path(dic, key, value, path)
        self.dic = dic
        if validate:
            config_checker.check_config(self.dic, path)

    # Read-only views PaddleSeg users know.
    @property
    def batch_size(self):
        return self.dic.get('batch_size', 1)

    @property
    def iters(self):
        return self.dic.get('iters')

    @property
    def model_cfg(self):
        return self.dic.get('model', {})

    @property
    def train_dataset_cfg(self):
        return self.dic.get('train_dataset', {})

    @property
    def val_dataset_cfg(self):
        return self.dic.get('val_dataset', {})

    @property
    def optimizer_cfg(self):
        return self.dic.get('optimizer', {})

    @property
    def lr_scheduler_cfg(self):
        return self.dic.get('lr_scheduler', {})

    @property
    def loss_cfg(self):
        return self.dic.get('loss', {})

    @property
    def test_config(self):
        return self.dic.get('test_config', {})

    @property
    def to_static_training(self):
        return bool(self.dic.get('to_static_training', False))

    @property
    def export_config(self):
        return self.dic.get('export', {})

    def to_yaml(self):
        """The merged config as YAML text (what a run records in save_dir)."""
        return yaml.safe_dump(self.dic, sort_keys=False, allow_unicode=True)

    def __str__(self):
        return '{} ({})\n{}'.format(type(self).__name__, self.path,
                                    self.to_yaml())


def load_with_base(path, _seen=()):
    """Load ``path`` and merge its ``_base_`` files under it, recursively."""
    path = os.path.abspath(path)
    if path in _seen:
        chain = ' -> '.join(list(_seen) + [path])
        raise ConfigError('Config inheritance loops: {}; remove one of the '
                          '_base_ entries.'.format(chain))
    if len(_seen) >= _MAX_BASE_DEPTH:
        raise ConfigError(
            'The _base_ chain from {} is more than {} files deep (at {}); '
            'flatten it.'.format(_seen[0], _MAX_BASE_DEPTH, path))
    dic = _load_yaml(path)
    bases = dic.pop(_BASE_KEY, None)
    if bases is None:
        return dic
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(
            '_base_ in {} must be a path or a list of paths, got {!r}.'.format(
                path, bases))
    merged = {}
    for base in bases:
        base_path = os.path.join(os.path.dirname(path), base)
        if not os.path.isfile(base_path):
            raise ConfigError(
                '_base_ file {!r} named in {} does not exist (resolved to {}); '
                'fix the relative path.'.format(base, path, base_path))
        merged = merge_config_dicts(load_with_base(base_path, _seen + (path,)),
                                    merged)
    return merge_config_dicts(dic, merged)


def _load_yaml(path):
    try:
        with codecs.open(path, 'r', 'utf-8') as f:
            dic = yaml.load(f, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, 'problem_mark', None)
        where = ' at line {}'.format(mark.line + 1) if mark else ''
        raise ConfigError('Config file {} is not valid YAML{}: {}.'.format(
            path, where, getattr(e, 'problem', e))) from e
    except UnicodeDecodeError as e:
        raise ConfigError('Config file {} is not UTF-8 text.'.format(path)) from e
    if dic is None:
        return {}
    if not isinstance(dic, dict):
        raise ConfigError('Config file {} must hold a mapping of keys, got a '
                          '{}.'.format(path, type(dic).__name__))
    return dic


def merge_config_dicts(child, base):
    """Merge ``child`` into a copy of ``base``: dicts recursively, child wins.

    A dict of ``child`` holding ``_inherited_: False`` replaces the dict of
    ``base`` rather than merging into it.
    """
    out = copy.deepcopy(base)
    for key, value in child.items():
        if isinstance(value, dict):
            value = dict(value)
            inherit = value.pop(_INHERITED_KEY, True)
            if inherit and isinstance(out.get(key), dict):
                out[key] = merge_config_dicts(value, out[key])
                continue
            out[key] = merge_config_dicts(value, {})
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_opts(opt):
    """Split ``"a.b=value"`` into ``("a.b", literal value)``."""
    if not isinstance(opt, str) or '=' not in opt:
        raise ConfigError(
            '--opts entry {!r} is not of the form key.sub=value (e.g. '
            'model.backbone.output_stride=16).'.format(opt))
    key, text = opt.split('=', 1)
    key = key.strip()
    if not key:
        raise ConfigError('--opts entry {!r} has an empty key.'.format(opt))
    return key, _literal(text.strip())


def _literal(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _set_by_path(dic, key, value, path):
    node = dic
    parts = key.split('.')
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(
                    '--opts {}: {!r} is not a valid index of the list at {} '
                    '(length {}) in {}.'.format(key, part, '.'.join(parts[:i]),
                                                len(node), path))
            part = int(part)
        elif not isinstance(node, dict):
            raise ConfigError(
                '--opts {}: {} is a {} value, not a mapping, in {}.'.format(
                    key, '.'.join(parts[:i]), type(node).__name__, path))
        if last:
            node[part] = value
        else:
            if isinstance(node, dict) and part not in node:
                node[part] = {}
            node = node[part]
