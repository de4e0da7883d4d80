"""Config: _base_, _inherited_, --opts, shortcuts, schema and named rules."""

import glob
import os

import pytest

import paddleseg  # noqa: F401  (registers components)
from paddleseg.cvlibs import Config, SegBuilder, manager
from paddleseg.cvlibs.config import merge_config_dicts, parse_opts
from paddleseg.utils.errors import ConfigError, SegError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")

BASE = """
batch_size: 2
iters: 100
train_dataset:
  type: Dataset
  dataset_root: data/x
  num_classes: 4
  train_path: data/x/train.txt
  transforms:
    - type: Normalize
  mode: train
optimizer:
  type: SGD
  momentum: 0.9
  weight_decay: 4.0e-5
lr_scheduler:
  type: PolynomialDecay
  learning_rate: 0.01
  power: 0.9
loss:
  types:
    - type: CrossEntropyLoss
  coef: [1]
"""


def test_base_merge_child_wins_and_lists_replace(write_yaml):
    write_yaml('base.yml', BASE)
    child = write_yaml('child.yml', """
_base_: base.yml
iters: 50
lr_scheduler:
  learning_rate: 0.1
train_dataset:
  transforms:
    - type: RandomHorizontalFlip
""")
    dic = Config(child).dic
    assert dic['iters'] == 50 and dic['batch_size'] == 2
    assert dic['lr_scheduler'] == {'type': 'PolynomialDecay',
                                   'learning_rate': 0.1, 'power': 0.9}
    assert dic['train_dataset']['transforms'] == [
        {'type': 'RandomHorizontalFlip'}]
    assert dic['train_dataset']['num_classes'] == 4


def test_base_as_list_later_bases_win(write_yaml):
    write_yaml('a.yml', 'batch_size: 1\niters: 10\n')
    write_yaml('b.yml', 'batch_size: 3\n')
    child = write_yaml('c.yml', '_base_: [a.yml, b.yml]\n')
    dic = Config(child).dic
    assert dic == {'batch_size': 3, 'iters': 10}


def test_inherited_false_replaces_dict(write_yaml):
    write_yaml('base.yml', BASE)
    child = write_yaml('child.yml', """
_base_: base.yml
optimizer:
  _inherited_: False
  type: Adam
""")
    assert Config(child).dic['optimizer'] == {'type': 'Adam'}


def test_merge_does_not_mutate_inputs():
    base = {'a': {'b': 1}}
    child = {'a': {'c': 2}}
    assert merge_config_dicts(child, base) == {'a': {'b': 1, 'c': 2}}
    assert base == {'a': {'b': 1}} and child == {'a': {'c': 2}}


def test_opts_and_shortcuts(write_yaml):
    path = write_yaml('base.yml', BASE)
    cfg = Config(path, iters=7, batch_size=5, learning_rate=0.5, opts=[
        'train_dataset.num_classes=6', 'optimizer.weight_decay=1.0e-4',
        'train_dataset.transforms.0.mean=[0.1, 0.2, 0.3]'
    ])
    assert (cfg.iters, cfg.batch_size) == (7, 5)
    assert cfg.dic['lr_scheduler']['learning_rate'] == 0.5
    assert cfg.dic['train_dataset']['num_classes'] == 6
    assert cfg.dic['optimizer']['weight_decay'] == 1e-4
    assert cfg.dic['train_dataset']['transforms'][0]['mean'] == [0.1, 0.2, 0.3]


@pytest.mark.parametrize('text, value', [('8', 8), ('1.0e-4', 1e-4),
                                         ('True', True), ('true', True),
                                         ('[1, 2]', [1, 2]), ('abc', 'abc'),
                                         ('1e-4', 1e-4)])
def test_parse_opts_literals(text, value):
    assert parse_opts('a.b=' + text) == ('a.b', value)


def test_opts_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="not of the form key.sub=value"):
        parse_opts('model.backbone')


def test_missing_file_and_bad_yaml(write_yaml, tmp_path):
    with pytest.raises(ConfigError, match='does not exist'):
        Config(str(tmp_path / 'nope.yml'))
    bad = write_yaml('bad.yml', 'a: [1, 2\n')
    with pytest.raises(ConfigError, match='not valid YAML at line'):
        Config(bad)


def test_missing_base_and_loop(write_yaml):
    p = write_yaml('c.yml', '_base_: missing.yml\n')
    with pytest.raises(ConfigError, match="_base_ file 'missing.yml'"):
        Config(p)
    write_yaml('x.yml', '_base_: y.yml\n')
    p = write_yaml('y.yml', '_base_: x.yml\n')
    with pytest.raises(ConfigError, match='inheritance loops'):
        Config(p)


def test_unknown_top_level_key_suggests(write_yaml):
    p = write_yaml('c.yml', 'bach_size: 2\n')
    with pytest.raises(ConfigError) as e:
        Config(p)
    assert "Unknown key 'bach_size'" in str(e.value)
    assert "Did you mean 'batch_size'?" in str(e.value)


def test_wrong_type_names_key_and_value(write_yaml):
    p = write_yaml('c.yml', 'batch_size: two\n')
    with pytest.raises(ConfigError,
                       match="batch_size in .* must be an int but is 'two'"):
        Config(p)


def test_unknown_component_argument_suggests(write_yaml):
    write_yaml('base.yml', BASE)
    p = write_yaml('c.yml', """
_base_: base.yml
optimizer:
  momentun: 0.9
""")
    with pytest.raises(ConfigError) as e:
        Config(p)
    assert "optimizer.momentun" in str(e.value)
    assert "Did you mean 'momentum'?" in str(e.value)


def test_component_argument_type_checked(write_yaml):
    write_yaml('base.yml', BASE)
    p = write_yaml('c.yml', """
_base_: base.yml
loss:
  types:
    - type: CrossEntropyLoss
      ignore_index: "255"
  coef: [1]
""")
    with pytest.raises(ConfigError, match=r"loss.types\[0\].ignore_index"):
        Config(p)


def test_rule_loss_types_match_coef(write_yaml):
    write_yaml('base.yml', BASE)
    p = write_yaml('c.yml', '_base_: base.yml\nloss:\n  coef: [1, 0.4]\n')
    with pytest.raises(ConfigError,
                       match="rule 'loss_types_match_coef' failed"):
        Config(p)


def test_rule_num_classes_consistent(write_yaml):
    write_yaml('base.yml', BASE)
    p = write_yaml('c.yml', """
_base_: base.yml
model:
  type: FCN
  num_classes: 19
  backbone:
    type: ResNet18_vd
""")
    with pytest.raises(ConfigError) as e:
        Config(p)
    assert "rule 'num_classes_consistent' failed" in str(e.value)
    assert 'train_dataset.num_classes=4' in str(e.value)
    assert 'model.num_classes=19' in str(e.value)


def test_rule_ignore_index_consistent(write_yaml):
    write_yaml('base.yml', BASE)
    p = write_yaml('c.yml', """
_base_: base.yml
train_dataset:
  ignore_index: 0
""")
    assert Config(p)  # the loss takes the dataset's value by default
    p = write_yaml('d.yml', """
_base_: base.yml
loss:
  types:
    - type: CrossEntropyLoss
      ignore_index: 254
  coef: [1]
""")
    with pytest.raises(ConfigError,
                       match="rule 'ignore_index_consistent' failed"):
        Config(p)


MIXED_RMI = """
_base_: base.yml
train_dataset:
  ignore_index: 0
loss:
  types:
    - type: MixedLoss
      losses:
        - type: RMILoss{extra}
        - type: CrossEntropyLoss
      coef: [1.0, 1.0]
  coef: [1]
"""


def test_losses_nested_in_mixed_loss_take_the_dataset_defaults(write_yaml):
    # PaddleSeg#3020: RMILoss's own default is 19 classes; here the dataset
    # has 4, and the losses inside MixedLoss get its num_classes and
    # ignore_index like a top-level loss does.
    write_yaml('base.yml', BASE)
    p = write_yaml('c.yml', MIXED_RMI.format(extra=''))
    mixed = SegBuilder(Config(p)).loss['types'][0]
    rmi, ce = mixed.losses
    assert (rmi.num_classes, rmi.ignore_index, ce.ignore_index) == (4, 0, 0)


def test_rule_loss_num_classes_match_dataset(write_yaml):
    write_yaml('base.yml', BASE)
    assert Config(write_yaml('ok.yml', MIXED_RMI.format(
        extra='\n          num_classes: 4')))
    p = write_yaml('c.yml', MIXED_RMI.format(
        extra='\n          num_classes: 19'))
    with pytest.raises(ConfigError) as e:
        Config(p)
    msg = str(e.value)
    assert "rule 'loss_num_classes_match_dataset' failed" in msg
    assert ('loss.types[0].losses[0].num_classes is 19 but '
            'train_dataset.num_classes is 4; make them equal') in msg


def test_rule_ignore_index_checks_nested_losses(write_yaml):
    write_yaml('base.yml', BASE)
    p = write_yaml('c.yml', MIXED_RMI.format(
        extra='\n          ignore_index: 255'))
    with pytest.raises(ConfigError, match=r"rule 'ignore_index_consistent' "
                       r"failed.*loss.types\[0\].losses\[0\].ignore_index "
                       r"is 255 but the training dataset ignores 0"):
        Config(p)


def test_rule_positive_schedule(write_yaml):
    write_yaml('base.yml', BASE)
    with pytest.raises(ConfigError, match="rule 'positive_schedule'"):
        Config(write_yaml('d.yml', '_base_: base.yml\niters: 0\n'))


@pytest.mark.parametrize('iters', [3, 100])
def test_schedule_shorter_than_warmup_warms_up_over_the_run(write_yaml,
                                                            monkeypatch,
                                                            iters):
    # `--iters 3` on a config with 100 warm-up iterations: the first thing a
    # user tries. The whole run warms up, with one warning naming both.
    write_yaml('base.yml', BASE)
    p = write_yaml('c.yml', '_base_: base.yml\nlr_scheduler:\n'
                   '  warmup_iters: 100\n  warmup_start_lr: 0.0\n')
    cfg = Config(p, iters=iters)
    warnings = []
    from paddleseg.cvlibs import builder
    monkeypatch.setattr(builder.logger, 'warning',
                        lambda msg, *a: warnings.append(msg % a))
    sched = SegBuilder(cfg).lr_scheduler
    assert len(warnings) == 1
    assert 'warmup_iters (100)' in warnings[0]
    assert 'iters ({})'.format(iters) in warnings[0]
    lrs = []
    for _ in range(iters):
        lrs.append(sched())
        sched.step()
    assert lrs[0] == 0.0 and all(b > a for a, b in zip(lrs, lrs[1:]))
    assert lrs[-1] == pytest.approx(0.01 * (iters - 1) / iters)


def test_unknown_optimizer_type_lists_valid(write_yaml):
    write_yaml('base.yml', BASE)
    p = write_yaml('c.yml', '_base_: base.yml\noptimizer:\n  _inherited_: '
                   'False\n  type: Adamm\n')
    with pytest.raises(ConfigError, match="'Adamm' is not a paddle.optimizer "
                       "class; use one of .*AdamW"):
        Config(p)


def test_builder_unknown_type_names_path(write_yaml):
    write_yaml('base.yml', BASE)
    p = write_yaml('c.yml', """
_base_: base.yml
model:
  type: FCN
  backbone:
    type: ResNet18_vdd
""")
    with pytest.raises(ConfigError) as e:
        SegBuilder(Config(p)).model
    msg = str(e.value)
    assert msg.startswith('model.backbone:')
    assert "'ResNet18_vdd' is not registered" in msg
    assert "Did you mean 'ResNet18_vd'" in msg


def test_builder_wraps_constructor_error(write_yaml):
    write_yaml('base.yml', BASE)
    p = write_yaml('c.yml', """
_base_: base.yml
model:
  type: FCN
  backbone:
    type: ResNet18_vd
    output_stride: 5
""")
    with pytest.raises(SegError) as e:
        SegBuilder(Config(p)).model
    assert 'model.backbone (type ResNet18_vd)' in str(e.value)


def test_builder_optimizer_and_poly_defaults(write_yaml):
    import paddle
    write_yaml('base.yml', BASE)
    p = write_yaml('c.yml', """
_base_: base.yml
model:
  type: FCN
  backbone:
    type: ResNet18_vd
lr_scheduler:
  warmup_iters: 10
  warmup_start_lr: 1.0e-5
""")
    b = SegBuilder(Config(p))
    assert isinstance(b.optimizer, paddle.optimizer.Momentum)
    sched = b.lr_scheduler
    assert isinstance(sched, paddle.optimizer.lr.LinearWarmup)
    assert sched.learning_rate.decay_steps == 90  # iters - warmup_iters
    assert sched.learning_rate.end_lr == 0.0
    assert abs(sched() - 1e-5) < 1e-12
    loss = b.loss
    assert loss['coef'] == [1.0]
    assert loss['types'][0].ignore_index == 255


COMPAT = os.path.join(SHARED, 'compat', 'paddleseg_configs', 'configs')


@pytest.mark.skipif(not os.path.isdir(COMPAT),
                    reason='PaddleSeg reference configs not present')
@pytest.mark.parametrize('path', sorted(
    glob.glob(os.path.join(COMPAT, '*', '*.yml'))), ids=os.path.basename)
def test_paddleseg_configs_load_and_build(path):
    """PaddleSeg's configs load unchanged; models build or say what's missing."""
    cfg = Config(path)
    model_cfg = cfg.model_cfg
    if not model_cfg:
        return
    # Building pretrained weights would need the network: drop those URLs.
    stripped = Config(path, opts=[o for o in (
        'model.pretrained=None' if 'pretrained' in model_cfg else None,
        'model.backbone.pretrained=None'
        if 'pretrained' in model_cfg.get('backbone', {}) else None) if o])
    from paddleseg.cvlibs.manager import find_component
    missing = [name for name in (model_cfg['type'],
                                 model_cfg.get('backbone', {}).get('type'))
               if name and find_component(name) is None]
    if missing:
        with pytest.raises(ConfigError, match='is not registered'):
            SegBuilder(stripped).model
    else:
        assert SegBuilder(stripped).model is not None


@pytest.mark.parametrize('path', sorted(
    glob.glob(os.path.join(ROOT, 'configs', '*', '*.yml'))),
    ids=os.path.basename)
def test_project_configs_build(path):
    """Every shipped config loads and builds its model and losses (pretrained
    URLs dropped: no network); the model and loss agree on the outputs."""
    cfg = Config(path)
    model_cfg = cfg.model_cfg
    if not model_cfg:  # a _base_ with datasets only
        return
    opts = [o for o in (
        'model.pretrained=None' if 'pretrained' in model_cfg else None,
        'model.backbone.pretrained=None'
        if 'pretrained' in model_cfg.get('backbone', {}) else None) if o]
    builder = SegBuilder(Config(path, opts=opts))
    model = builder.model
    losses = builder.loss
    assert len(losses['types']) == len(losses['coef'])
    if hasattr(model, 'output_names'):  # it says what it returns in training
        assert len(losses['types']) == len(model.output_names)
    elif getattr(model, 'enable_auxiliary_loss', False):
        assert len(losses['types']) == 2
