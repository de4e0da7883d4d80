"""Every flag of PaddleSeg's five scripts, walked: each is accepted by our
script of the same name, or refused with one sentence through the error
boundary (exit 2, one ``Error:`` line), never with argparse's
"unrecognized arguments"; and the README's flag tables list them all.

The flag lists are PaddleSeg's, written out from ``tools/train.py``,
``tools/val.py``, ``tools/predict.py``, ``tools/export.py`` and
``deploy/python/infer.py`` of release 2.8 and of develop (their union;
develop added ``--early_stop_intervals``, ``--to_static_training``,
``--use_multilabel``, ``--device_id``, ``--for_fd`` and train.py's export
flags), plus ``--save_log_path``, which PaddleSeg's TIPC files name for
infer.py. Each comes with a value as PaddleSeg's documentation writes it
(None: a switch).
"""

import importlib.util
import io
import os
import re
import sys
from contextlib import redirect_stderr

import pytest

from paddleseg.utils import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PADDLESEG_FLAGS = {
    'train.py': {
        '--config': 'c.yml', '--device': 'cpu', '--save_dir': 'out',
        '--num_workers': '2', '--do_eval': None, '--use_vdl': None,
        '--use_ema': None, '--resume_model': 'out/iter_10', '--iters': '100',
        '--batch_size': '4', '--learning_rate': '0.01',
        '--save_interval': '50', '--log_iters': '5',
        '--keep_checkpoint_max': '3', '--early_stop_intervals': '4',
        '--seed': '42', '--precision': 'fp16', '--amp_level': 'O2',
        '--profiler_options': 'batch_range=[10,20];state=CPU',
        '--data_format': 'NCHW', '--repeats': '2',
        '--opts': 'train_dataset.mode=train', '--use_multilabel': None,
        '--to_static_training': None, '--output_op': 'softmax',
        '--input_shape': '1 3 512 512', '--for_fd': None,
    },
    'val.py': {
        '--config': 'c.yml', '--model_path': 'm.pdparams',
        '--num_workers': '2', '--device': 'cpu', '--aug_eval': None,
        '--scales': '0.75 1.0 1.25', '--flip_horizontal': None,
        '--flip_vertical': None, '--is_slide': None,
        '--crop_size': '769 769', '--stride': '513 513',
        '--data_format': 'NCHW', '--auc_roc': 'True',
        '--opts': 'val_dataset.mode=val', '--use_multilabel': None,
    },
    'predict.py': {
        '--config': 'c.yml', '--model_path': 'm.pdparams',
        '--image_path': 'img.png', '--save_dir': 'out', '--device': 'gpu',
        '--device_id': '1', '--aug_pred': None, '--scales': '0.75 1.0 1.25',
        '--flip_horizontal': None, '--flip_vertical': None,
        '--is_slide': None, '--crop_size': '512 512', '--stride': '256 256',
        '--custom_color': '0 0 0 255 255 255', '--use_multilabel': None,
    },
    'export.py': {
        '--config': 'c.yml', '--model_path': 'm.pdparams',
        '--save_dir': 'out', '--input_shape': '1 3 512 1024',
        '--output_op': 'none', '--for_fd': None,
    },
    'deploy/python/infer.py': {
        '--config': 'deploy.yaml', '--image_path': 'img.png',
        '--batch_size': '2', '--save_dir': 'out', '--device': 'cpu',
        '--use_trt': 'True', '--precision': 'fp16',
        '--min_subgraph_size': '3', '--enable_auto_tune': 'True',
        '--auto_tuned_shape_file': 'shape.pbtxt', '--cpu_threads': '4',
        '--enable_mkldnn': 'True', '--benchmark': 'True',
        '--model_name': 'ccnet', '--with_argmax': None,
        '--print_detail': 'False', '--save_log_path': 'out/log.txt',
    },
}

# What each script needs besides the flag under test.
REQUIRED = {
    'train.py': ['--config', 'c.yml'],
    'val.py': ['--config', 'c.yml', '--model_path', 'm.pdparams'],
    'predict.py': ['--config', 'c.yml', '--model_path', 'm.pdparams',
                   '--image_path', 'img.png'],
    'export.py': ['--config', 'c.yml', '--model_path', 'm.pdparams'],
    'deploy/python/infer.py': ['--config', 'deploy.yaml', '--image_path',
                               'img.png'],
}

# The flags (with the value above) refused on this machine's CPU-only Paddle,
# and a word of each message.
REFUSED = {
    ('train.py', '--use_multilabel'): 'multi-label',
    ('train.py', '--output_op'): 'uniform-output',
    ('train.py', '--input_shape'): 'uniform-output',
    ('train.py', '--for_fd'): 'uniform-output',
    ('val.py', '--use_multilabel'): 'multi-label',
    ('predict.py', '--use_multilabel'): 'multi-label',
    ('deploy/python/infer.py', '--use_trt'): 'TensorRT runs on the GPU',
    ('deploy/python/infer.py', '--min_subgraph_size'): 'only applies to '
    'TensorRT',
    ('deploy/python/infer.py', '--enable_auto_tune'): 'only applies to '
    'TensorRT',
    ('deploy/python/infer.py', '--auto_tuned_shape_file'): 'only applies to '
    'TensorRT',
}

# Values PaddleSeg takes that this project refuses (the flag itself is
# accepted with other values).
REFUSED_VALUES = [
    ('train.py', '--data_format', 'NHWC', 'NHWC'),
    ('val.py', '--data_format', 'NHWC', 'NHWC'),
    ('train.py', '--device', 'xpu', 'cpu or gpu only'),
    ('val.py', '--device', 'npu', 'cpu or gpu only'),
    ('predict.py', '--device', 'mlu', 'cpu or gpu only'),
    ('export.py', '--device', 'xpu', 'cpu or gpu only'),
    ('deploy/python/infer.py', '--device', 'xpu', 'cpu or gpu only'),
]


def _script(name):
    """The root script ``name`` as a module (not run)."""
    spec = importlib.util.spec_from_file_location(
        'script_' + re.sub(r'\W', '_', name), os.path.join(ROOT, name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parse(monkeypatch, name, argv):
    module = _script(name)
    monkeypatch.setattr(sys, 'argv', [name] + argv)
    err = io.StringIO()
    with redirect_stderr(err):
        try:
            return module.parse_args()
        except SystemExit as e:  # argparse refused: what must not happen
            raise AssertionError('{} {} ended in argparse exit {}: {}'.format(
                name, argv, e.code, err.getvalue()[-500:])) from None


def _argv(name, flag, value):
    extra = [flag] + ([] if value is None else value.split())
    required = REQUIRED[name]
    if flag in required:  # given with the flag's own value instead
        i = required.index(flag)
        required = required[:i] + required[i + 2:]
    return required + extra


CASES = [(name, flag) for name, flags in PADDLESEG_FLAGS.items()
         for flag in flags]


@pytest.mark.parametrize('name, flag', CASES,
                         ids=['{} {}'.format(*c) for c in CASES])
def test_every_paddleseg_flag_is_accepted_or_refused_in_one_sentence(
        monkeypatch, name, flag):
    value = PADDLESEG_FLAGS[name][flag]
    argv = _argv(name, flag, value)
    if (name, flag) in REFUSED:
        with pytest.raises(cli.SegError) as e:
            _parse(monkeypatch, name, argv)
        message = str(e.value)
        assert REFUSED[(name, flag)] in message
        assert message.startswith(flag) and '\n' not in message
        return
    args = _parse(monkeypatch, name, argv)
    dest = flag.lstrip('-')
    dest = {'aug_pred': 'aug_eval'}.get(dest, dest)
    got = getattr(args, dest)
    if value is None:
        assert got is True, (flag, got)
    elif value in ('True', 'False'):
        assert got is (value == 'True'), (flag, got)
    else:  # the value as given (numbers as parsed)
        words = got if isinstance(got, list) else [got]
        assert ' '.join(map(str, words)) == value, (flag, got)


@pytest.mark.parametrize('name, flag, value, words', REFUSED_VALUES)
def test_values_this_project_cannot_honour_are_refused(monkeypatch, name,
                                                       flag, value, words):
    with pytest.raises(cli.SegError, match=words):
        _parse(monkeypatch, name, _argv(name, flag, value))


def test_a_refusal_passes_the_error_boundary_as_one_line(monkeypatch,
                                                         capsys):
    module = _script('train.py')
    monkeypatch.setattr(sys, 'argv', ['train.py', '--config', 'c.yml',
                                      '--use_multilabel'])
    with pytest.raises(SystemExit) as e:
        cli.run(module.parse_args)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert 'unrecognized arguments' not in err and 'Traceback' not in err
    errors = [l for l in err.splitlines() if l.startswith('Error: ')]
    assert len(errors) == 1 and 'multi-label' in errors[0], err


def test_aug_eval_and_aug_pred_are_one_switch(monkeypatch):
    for name in ('val.py', 'predict.py'):
        for switch in ('--aug_eval', '--aug_pred'):
            args = _parse(monkeypatch, name, REQUIRED[name] + [switch])
            assert args.aug_eval is True
    # predict.py names it --aug_pred, val.py --aug_eval (the other is an
    # alias): the help lists the script's own name first.
    for name, first in (('val.py', '--aug_eval'), ('predict.py',
                                                   '--aug_pred')):
        monkeypatch.setattr(sys, 'argv', [name, '--help'])
        out = io.StringIO()
        with pytest.raises(SystemExit), redirect_stderr(io.StringIO()):
            from contextlib import redirect_stdout
            with redirect_stdout(out):
                _script(name).parse_args()
        assert '{}, --aug_'.format(first) in out.getvalue()


def _readme_tables():
    """{script: set of flags in backticks} of the README's flag tables,
    one per script under a '#### `script`' heading."""
    tables, current = {}, None
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
        for line in f:
            heading = re.match(r'#### `([\w/.]+\.py)`', line)
            if heading:
                current = tables.setdefault(heading.group(1), set())
            elif line.startswith('#'):
                current = None
            elif current is not None and line.startswith('|'):
                first = re.split(r'(?<!\\)\|', line.strip()[1:])[0]
                current.update(re.findall(r'`(--\w+)', first))
    return tables


@pytest.mark.parametrize('name', sorted(PADDLESEG_FLAGS))
def test_the_readme_tables_list_every_flag(name):
    tables = _readme_tables()
    assert name in tables, "README.md has no '#### `{}`' table".format(name)
    missing = sorted(set(PADDLESEG_FLAGS[name]) - tables[name])
    assert not missing, 'README table of {} lacks {}'.format(name, missing)


def test_config_keys_reach_training_and_evaluation(tmp_path, monkeypatch):
    # to_static_training (the config key, or the flag), aug_combine and
    # auc_roc of test_config; a flag wins over test_config.
    from paddleseg.core.train_cli import train_kwargs
    from paddleseg.cvlibs import Config
    from paddleseg.utils.errors import ConfigError
    path = tmp_path / 'c.yml'
    path.write_text('batch_size: 2\niters: 3\nto_static_training: True\n'
                    'test_config:\n  aug_combine: probs\n  auc_roc: True\n')
    cfg = Config(str(path))
    args = _parse(monkeypatch, 'train.py', ['--config', str(path)])
    kw = train_kwargs(args, cfg)
    assert kw['to_static_training'] is True
    assert kw['eval_kwargs'] == {'aug_combine': 'probs', 'auc_roc': True}
    val_args = _parse(monkeypatch, 'val.py', REQUIRED['val.py'] + [
        '--aug_combine', 'logits', '--auc_roc', 'False'])
    assert cli.eval_kwargs(val_args, cfg.test_config) == {
        'aug_combine': 'logits', 'auc_roc': False}
    path.write_text('test_config:\n  aug_combine: mean\n')
    with pytest.raises(ConfigError, match="aug_combine must be 'logits'"):
        Config(str(path))
    with pytest.raises(cli.SegError, match='use_multilabel'):
        cli.inference_kwargs(None, {'use_multilabel': True})
