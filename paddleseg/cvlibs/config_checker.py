"""Validation of a merged config before anything is built.

Two layers:

* the schema: known top-level keys and their types, and the arguments of every
  registered component (``type:`` dicts) checked against its constructor's
  signature, so a typo fails at load time with the key path and the closest
  valid name instead of as a ``TypeError`` deep in a constructor;
* cross-field rules: small named functions (``@rule('name')``); a failure
  names the rule.

Components whose type is not registered are left to the builder, which fails
with the registry's "not registered" message; that way a PaddleSeg config
naming a model this project does not have still loads.
"""

import difflib
import inspect
import numbers

from paddleseg.utils.errors import ConfigError
from . import manager
from .manager import (REGISTRY_BY_KEY, dataset_attr, find_component,
                      lr_scheduler_class, optimizer_class)

_TOP_LEVEL = {
    'batch_size': int, 'iters': int, 'train_dataset': dict,
    'val_dataset': dict, 'test_dataset': dict, 'model': dict,
    'optimizer': dict, 'lr_scheduler': dict, 'loss': dict,
    'distill_loss': dict, 'test_config': dict, 'export': dict,
    'to_static_training': bool,
}
_TEST_CONFIG = {
    'aug_eval': bool, 'scales': (numbers.Real, list), 'flip_horizontal': bool,
    'flip_vertical': bool, 'is_slide': bool, 'crop_size': list,
    'stride': list, 'auc_roc': bool, 'aug_combine': str,
    'use_multilabel': bool,
}
_EXPORT = {'transforms': list, 'input_shape': list, 'output_op': str}
_LOSS = {'types': list, 'coef': list}
_RULES = []


def check_config(dic, path):
    """Validate ``dic`` (loaded from ``path``); raise ConfigError on a problem."""
    _check_keys(dic, _TOP_LEVEL, '', path)
    for key, schema in (('test_config', _TEST_CONFIG), ('export', _EXPORT),
                        ('loss', _LOSS), ('distill_loss', _LOSS)):
        if key in dic:
            _check_keys(dic[key], schema, key + '.', path)
    for key in ('model', 'train_dataset', 'val_dataset', 'test_dataset'):
        if key in dic:
            check_component(dic[key], key, path, REGISTRY_BY_KEY[key])
    for key in ('loss', 'distill_loss'):
        for i, item in enumerate(dic.get(key, {}).get('types', [])):
            check_component(item, '{}.types[{}]'.format(key, i), path,
                            manager.LOSSES)
    _check_paddle_classes(dic, path)
    for name, fn in _RULES:
        message = fn(dic)
        if message:
            raise ConfigError("Config rule '{}' failed in {}: {}".format(
                name, path, message))


def _check_paddle_classes(dic, path):
    """Check optimizer and lr_scheduler arguments against Paddle's classes."""
    for key, find, extra in (
        ('optimizer', optimizer_class, ()),
        ('lr_scheduler', lr_scheduler_class,
         ('warmup_iters', 'warmup_start_lr')),
    ):
        cfg = dic.get(key)
        if cfg is None:
            continue
        if not isinstance(cfg, dict):
            raise ConfigError('{} in {} must be a mapping, got {!r}.'.format(
                key, path, cfg))
        cls = find(cfg)
        params = inspect.signature(cls).parameters
        valid = [n for n in params if n not in ('parameters', 'self')]
        valid += list(extra)
        for arg in cfg:
            if arg != 'type' and arg not in valid:
                raise ConfigError(
                    '{}.{} in {}: {} has no argument {!r}.{} Valid arguments: '
                    '{}.'.format(key, arg, path, cls.__name__, arg,
                                 _suggest(arg, valid), ', '.join(valid)))


def _check_keys(dic, schema, prefix, path):
    if not isinstance(dic, dict):
        raise ConfigError('{} in {} must be a mapping, got {!r}.'.format(
            prefix.rstrip('.') or 'The config', path, dic))
    for key, value in dic.items():
        if key not in schema:
            raise ConfigError('Unknown key {!r} in {}.{} Valid keys: {}.'.format(
                prefix + str(key), path, _suggest(key, schema),
                ', '.join(sorted(schema))))
        _check_type(value, schema[key], prefix + key, path)


def _check_type(value, expected, key, path):
    expected = expected if isinstance(expected, tuple) else (expected, )
    if value is None:
        return
    if bool in expected and not isinstance(value, bool):
        ok = False
    elif isinstance(value, bool) and bool not in expected:
        ok = False
    else:
        ok = isinstance(value, expected) or (
            float in expected and isinstance(value, numbers.Real))
    if not ok:
        names = ' or '.join(t.__name__ for t in expected)
        raise ConfigError('{} in {} must be {} but is {!r} ({}).'.format(
            key, path, _article(names), value, type(value).__name__))


def check_component(cfg, key, path, registry=None):
    """Check a ``{type: Name, **kwargs}`` dict against Name's signature."""
    if not isinstance(cfg, dict):
        raise ConfigError('{} in {} must be a mapping with a `type` key, got '
                          '{!r}.'.format(key, path, cfg))
    if 'type' not in cfg:
        raise ConfigError('{} in {} has no `type` key; add e.g. `type: {}`.'
                          .format(key, path, _example_type(registry)))
    component = find_component(cfg['type'], registry)
    if component is not None:
        _check_arguments(cfg, component, key, path)
    for arg, value in cfg.items():
        child = '{}.{}'.format(key, arg)
        sub_registry = REGISTRY_BY_KEY.get(arg)
        if isinstance(value, dict) and 'type' in value:
            check_component(value, child, path, sub_registry)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict) and 'type' in item:
                    check_component(item, '{}[{}]'.format(child, i), path,
                                    sub_registry)


def _check_arguments(cfg, component, key, path):
    params = inspect.signature(component).parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    valid = [n for n, p in params.items()
             if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    for arg, value in cfg.items():
        if arg == 'type':
            continue
        if arg not in params:
            if takes_any:
                continue
            raise ConfigError(
                '{}.{} in {}: {} has no argument {!r}.{} Valid arguments: {}.'
                .format(key, arg, path, cfg['type'], arg,
                        _suggest(arg, valid), ', '.join(valid)))
        default = params[arg].default
        if default is inspect.Parameter.empty or default is None:
            continue
        if isinstance(default, bool):
            expected = bool
        elif isinstance(default, numbers.Real):
            # An int default does not make the argument int-only (PaddleSeg's
            # configs give e.g. RandomDistort.hue_range: 0.25).
            expected = float
        elif isinstance(default, str):
            expected = str
        elif isinstance(default, (list, tuple)):
            expected = (list, tuple)
        else:
            continue
        _check_type(value, expected, '{}.{}'.format(key, arg), path)


def _suggest(name, candidates):
    close = difflib.get_close_matches(str(name), list(candidates), n=1,
                                      cutoff=0.6)
    return ' Did you mean {!r}?'.format(close[0]) if close else ''


def _article(names):
    return ('an ' if names[0] in 'aeiou' else 'a ') + names


def _example_type(registry):
    names = sorted(registry.components_dict) if registry is not None else []
    return names[0] if names else 'Name'


def rule(name):
    """Register a cross-field rule: ``fn(dic) -> None | failure message``."""

    def decorator(fn):
        _RULES.append((name, fn))
        return fn

    return decorator


@rule('loss_types_match_coef')
def _loss_types_match_coef(dic):
    for key in ('loss', 'distill_loss'):
        loss = dic.get(key)
        if not loss:
            continue
        types, coef = loss.get('types'), loss.get('coef')
        if types is None or coef is None:
            return '{} needs both `types` and `coef` lists.'.format(key)
        if len(types) != len(coef):
            return ('{}.types has {} entries but {}.coef has {} ({}); give one '
                    'coefficient per loss, in the same order.'.format(
                        key, len(types), key, len(coef), coef))
        for c in coef:
            if isinstance(c, bool) or not isinstance(c, numbers.Real):
                return '{}.coef holds {!r}, which is not a number.'.format(
                    key, c)


@rule('num_classes_consistent')
def _num_classes_consistent(dic):
    seen = {}
    for key in ('train_dataset', 'val_dataset'):
        n = dataset_attr(dic.get(key), 'num_classes', 'NUM_CLASSES')
        if n is not None:
            seen[key + '.num_classes'] = n
    model_n = dic.get('model', {}).get('num_classes')
    if model_n is not None:
        seen['model.num_classes'] = model_n
    if len(set(seen.values())) > 1:
        return ('num_classes differs: {}; make them equal.'.format(', '.join(
            '{}={}'.format(k, v) for k, v in seen.items())))


def _loss_items(dic):
    """``(key path, config)`` of every loss under ``loss.types``, the losses
    nested in a ``MixedLoss`` (``loss.types[1].losses[0]``) included."""
    stack = [('loss.types[{}]'.format(i), item) for i, item in enumerate(
        (dic.get('loss') or {}).get('types') or [])]
    while stack:
        path, item = stack.pop(0)
        if not isinstance(item, dict):
            continue
        yield path, item
        for i, sub in enumerate(item.get('losses') or []):
            stack.append(('{}.losses[{}]'.format(path, i), sub))


@rule('ignore_index_consistent')
def _ignore_index_consistent(dic):
    dataset_ignore = dataset_attr(dic.get('train_dataset'), 'ignore_index',
                                  'IGNORE_INDEX', default=255)
    if dataset_ignore is None:
        return None
    for path, item in _loss_items(dic):
        if 'ignore_index' in item and item['ignore_index'] != dataset_ignore:
            return ('{}.ignore_index is {} but the training dataset ignores '
                    '{}; make them equal (or drop the loss key: it defaults '
                    'to the dataset\'s).'.format(path, item['ignore_index'],
                                                  dataset_ignore))


@rule('loss_num_classes_match_dataset')
def _loss_num_classes_match_dataset(dic):
    source = None
    for key in ('train_dataset', 'val_dataset'):
        n = dataset_attr(dic.get(key), 'num_classes', 'NUM_CLASSES')
        if n is not None:
            source = (key + '.num_classes', n)
            break
    if source is None and (dic.get('model') or {}).get('num_classes'):
        source = ('model.num_classes', dic['model']['num_classes'])
    if source is None:
        return None
    for path, item in _loss_items(dic):
        n = item.get('num_classes')
        if n is not None and n != source[1]:
            return ('{}.num_classes is {} but {} is {}; make them equal (or '
                    'drop the loss key: it defaults to the dataset\'s).'
                    .format(path, n, source[0], source[1]))


@rule('positive_schedule')
def _positive_schedule(dic):
    for key in ('batch_size', 'iters'):
        if key in dic and dic[key] is not None and dic[key] <= 0:
            return '{} must be positive, got {}.'.format(key, dic[key])
    warmup = dic.get('lr_scheduler', {}).get('warmup_iters', 0) or 0
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        return 'lr_scheduler.warmup_iters must be an integer >= 0, got ' \
            '{!r}.'.format(warmup)
    lr = dic.get('lr_scheduler', {}).get('learning_rate')
    if isinstance(lr, numbers.Real) and not isinstance(lr, bool) and lr <= 0:
        return ('lr_scheduler.learning_rate (or --learning_rate) must be '
                'positive, got {}; with 0 nothing would train.'.format(lr))


def _positive_numbers(value):
    values = value if isinstance(value, list) else [value]
    return bool(values) and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) and v > 0
        for v in values)


def _size_pair(value):
    return isinstance(value, list) and len(value) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0
        for v in value)


@rule('test_config_values')
def _test_config_values(dic):
    test = dic.get('test_config') or {}
    if 'scales' in test and test['scales'] is not None and \
            not _positive_numbers(test['scales']):
        return ('test_config.scales must be a positive number or a list of '
                'them (e.g. [0.75, 1.0, 1.25]), got {!r}.'.format(
                    test['scales']))
    for key in ('crop_size', 'stride'):
        if test.get(key) is not None and not _size_pair(test[key]):
            return ('test_config.{} must be [width, height] in positive '
                    'integers (e.g. [769, 769]), got {!r}.'.format(
                        key, test[key]))
    if test.get('aug_combine', 'logits') not in ('logits', 'probs'):
        return ("test_config.aug_combine must be 'logits' (the mean of the "
                "augmented views' logits, PaddleSeg 2.8) or 'probs' (the sum "
                'of their probabilities, PaddleSeg up to 2.7), got {!r}.'
                .format(test['aug_combine']))
