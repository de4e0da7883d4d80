"""Weights loading: files, folders, archives, URLs, mismatch reports."""

import tarfile

import numpy as np
import paddle
import pytest

from paddleseg.utils.weights import (load_entire_model,
                                        load_pretrained_model, resolve_weights)
from paddleseg.utils.errors import CheckpointError


class Tiny(paddle.nn.Layer):
    def __init__(self, out=4):
        super().__init__()
        self.conv = paddle.nn.Conv2D(3, out, 1)
        self.bn = paddle.nn.BatchNorm2D(out)
        self.fc = paddle.nn.Linear(2, 2)


def saved(tmp_path, model, name='model.pdparams'):
    path = tmp_path / name
    paddle.save(model.state_dict(), str(path))
    return path


def test_folder_and_file_load_the_same_weights(tmp_path):
    src = Tiny()
    saved(tmp_path, src)
    for path in (tmp_path, tmp_path / 'model.pdparams'):
        dst = Tiny()
        report = load_entire_model(dst, str(path))
        assert report.loaded == len(src.state_dict())
        np.testing.assert_array_equal(dst.conv.weight.numpy(),
                                      src.conv.weight.numpy())


def test_tar_gz_archive_as_paddleseg_publishes_backbones(tmp_path):
    src = Tiny()
    inner = tmp_path / 'resnet' / 'model.pdparams'
    inner.parent.mkdir()
    paddle.save(src.state_dict(), str(inner))
    archive = tmp_path / 'resnet.tar.gz'
    with tarfile.open(archive, 'w:gz') as t:
        t.add(inner.parent, arcname='resnet')
    dst = Tiny()
    load_pretrained_model(dst, str(archive))
    np.testing.assert_array_equal(dst.conv.bias.numpy(), src.conv.bias.numpy())


def test_report_names_missing_unexpected_and_mismatched(tmp_path):
    state = Tiny(out=4).state_dict()
    state['extra.weight'] = paddle.zeros([1])
    del state['bn._mean']
    paddle.save(state, str(tmp_path / 'w.pdparams'))
    dst = Tiny(out=8)
    report = load_pretrained_model(dst, str(tmp_path / 'w.pdparams'))
    assert report.missing == ['bn._mean']
    assert report.unexpected == ['extra.weight']
    names = [m[0] for m in report.mismatched]
    assert 'conv.weight' in names and 'bn.weight' in names
    assert ('conv.weight', [4, 3, 1, 1], [8, 3, 1, 1]) in report.mismatched


def test_backbone_prefix_is_stripped(tmp_path):
    src = Tiny()
    state = {'backbone.' + k: v for k, v in src.state_dict().items()}
    paddle.save(state, str(tmp_path / 'full.pdparams'))
    dst = Tiny()
    assert load_pretrained_model(dst, str(tmp_path / 'full.pdparams')).loaded == 8


@pytest.mark.parametrize('setup, message', [
    (lambda p: p / 'none.pdparams', 'does not exist'),
    (lambda p: (p / 'empty').mkdir() or p / 'empty', 'without model.pdparams'),
    (lambda p: (p / 'bad.pdparams').write_bytes(b'not a pickle') and
     p / 'bad.pdparams', 'Cannot read weights'),
])
def test_bad_paths_raise_clear_errors(tmp_path, setup, message):
    path = setup(tmp_path)
    with pytest.raises(CheckpointError, match=message) as e:
        load_entire_model(Tiny(), str(path))
    assert str(path) in str(e.value)


def test_no_parameter_matching_is_an_error(tmp_path):
    paddle.save({'other.weight': paddle.zeros([2])}, str(tmp_path / 'o.pdparams'))
    with pytest.raises(CheckpointError, match='No parameter of Tiny matches'):
        load_entire_model(Tiny(), str(tmp_path / 'o.pdparams'))


def test_unreachable_url_says_to_use_a_local_file(tmp_path, monkeypatch):
    monkeypatch.setenv('PADDLESEG_HOME', str(tmp_path))
    url = 'http://127.0.0.1:9/resnet18_vd.tar.gz'
    with pytest.raises(CheckpointError, match='set the path to the local file'):
        resolve_weights(url)
    assert not list(tmp_path.rglob('*.part'))
    assert not list(tmp_path.rglob('*.tmp'))  # the download's temporary
