"""tools/make_demo_data.py: layout, determinism, classes, scene structure,
and that Cityscapes and the file-list Dataset load what it writes."""

import filecmp
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
sys.path.insert(0, os.path.join(ROOT, 'tools'))
from make_demo_data import CLASSES, is_current, make_demo_data  # noqa: E402

TRAIN_IDS = {0, 1, 2, 8, 10, 11, 13}


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, n), root)
                  for d, _, names in os.walk(root) for n in names)


def _labels(root):
    return [cv2.imread(os.path.join(root, f), cv2.IMREAD_UNCHANGED)
            for f in _files(root) if f.endswith('_labelTrainIds.png')]


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('demo') / 'data')
    counts = make_demo_data(out, seed=0, num_train=20, num_val=4, width=128,
                            height=64)
    return out, counts


def test_layout_and_sizes(demo):
    out, counts = demo
    assert counts == {'train': 20, 'val': 4}
    files = _files(out)
    assert 'leftImg8bit/train/demo/demo_000000_000019_leftImg8bit.png' in files
    assert ('gtFine/val/demo/demo_000003_000019_gtFine_labelTrainIds.png'
            in files)
    assert len(files) == 2 * 24 + 3  # + train.txt, val.txt, demo_data.json
    img = cv2.imread(os.path.join(
        out, 'leftImg8bit/val/demo/demo_000000_000019_leftImg8bit.png'),
        cv2.IMREAD_UNCHANGED)
    assert img.shape == (64, 128, 3) and img.dtype == np.uint8
    assert all(label.shape == (64, 128) and label.dtype == np.uint8
               for label in _labels(out))
    with open(os.path.join(out, 'val.txt')) as f:
        lines = f.read().splitlines()
    assert lines[0] == ('leftImg8bit/val/demo/demo_000000_000019_leftImg8bit'
                        '.png gtFine/val/demo/demo_000000_000019_gtFine_'
                        'labelTrainIds.png')
    assert len(lines) == 4


def test_uses_exactly_the_seven_classes(demo):
    assert set(CLASSES) == TRAIN_IDS
    seen = set()
    for label in _labels(demo[0]):
        values = set(np.unique(label).tolist())
        assert values <= TRAIN_IDS
        seen |= values
    assert seen == TRAIN_IDS


def test_scene_structure(demo):
    """Sky/buildings at the top, ground at the bottom, several classes per
    image, and colours that alone do not give the class."""
    out = demo[0]
    for label in _labels(out):
        assert set(np.unique(label[0]).tolist()) <= {2, 8, 10}
        assert not set(np.unique(label[-1]).tolist()) & {2, 10}
        assert len(np.unique(label)) >= 4
    img = cv2.imread(os.path.join(
        out, 'leftImg8bit/train/demo/demo_000001_000019_leftImg8bit.png'))
    label = _labels(out)[1]
    for cls in (0, 2, 10):  # textured, not flat colour
        assert img[label == cls].std(axis=0).max() > 4


def test_same_seed_gives_identical_bytes(tmp_path):
    kwargs = dict(num_train=3, num_val=1, width=64, height=32)
    make_demo_data(str(tmp_path / 'a'), seed=5, **kwargs)
    make_demo_data(str(tmp_path / 'b'), seed=5, **kwargs)
    make_demo_data(str(tmp_path / 'c'), seed=6, **kwargs)
    files = _files(str(tmp_path / 'a'))
    assert files == _files(str(tmp_path / 'b')) == _files(str(tmp_path / 'c'))
    match, mismatch, errors = filecmp.cmpfiles(
        tmp_path / 'a', tmp_path / 'b', files, shallow=False)
    assert mismatch == [] and errors == [] and len(match) == len(files)
    _, mismatch, _ = filecmp.cmpfiles(tmp_path / 'a', tmp_path / 'c',
                                      [f for f in files if f.endswith('png')],
                                      shallow=False)
    assert len(mismatch) == 8


def test_rerun_replaces_the_demo_folders(tmp_path):
    out = str(tmp_path / 'd')
    make_demo_data(out, num_train=3, num_val=1, width=32, height=16)
    make_demo_data(out, num_train=2, num_val=1, width=32, height=16)
    assert len(os.listdir(os.path.join(out, 'leftImg8bit/train/demo'))) == 2
    with pytest.raises(ValueError, match='at least 16'):
        make_demo_data(out, width=8)


def test_cli(tmp_path):
    out = str(tmp_path / 'cli')
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tools', 'make_demo_data.py'),
         '--out', out, '--num_train', '2', '--num_val', '1', '--width', '32',
         '--height', '16', '--seed', '3'],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'Wrote 2 train and 1 val images' in proc.stdout
    assert len(os.listdir(os.path.join(out, 'gtFine/val/demo'))) == 1


def test_loads_as_cityscapes_and_as_file_list(demo):
    import paddleseg  # noqa: F401
    from paddleseg.datasets import Cityscapes, Dataset
    from paddleseg.transforms import Normalize
    out = demo[0]
    ds = Cityscapes([Normalize()], out, mode='train')
    assert len(ds) == 20 and ds[0]['label'].shape == (64, 128)
    ds = Dataset('val', out, 19, [Normalize()],
                 val_path=os.path.join(out, 'val.txt'))
    assert len(ds) == 4 and ds[3]['img'].shape == (3, 64, 128)


def test_is_current_tells_old_or_other_data(demo, tmp_path):
    out, _ = demo
    args = dict(seed=0, num_train=20, num_val=4, width=128, height=64)
    assert is_current(out, **args)
    assert not is_current(out, **dict(args, seed=1))
    assert not is_current(str(tmp_path / 'absent'), **args)
    stale = tmp_path / 'stale'
    stale.mkdir()
    stamp = json.loads(open(os.path.join(out, 'demo_data.json')).read())
    stamp['painter'] = 'an older painter'
    (stale / 'demo_data.json').write_text(json.dumps(stamp))
    assert not is_current(str(stale), **args)
    (stale / 'demo_data.json').write_text('{not json')
    assert not is_current(str(stale), **args)
