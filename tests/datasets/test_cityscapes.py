"""Cityscapes: layout scanning, class metadata, labelIds conversion on load
and by tools/convert_cityscapes.py, and its DataError cases."""

import logging
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import paddleseg  # noqa: F401  (registers components)
from paddleseg.cvlibs import manager
from paddleseg.datasets import Cityscapes
from paddleseg.datasets import cityscapes as cs
from paddleseg.transforms import Normalize, RandomPaddingCrop
from paddleseg.utils.errors import DataError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
sys.path.insert(0, os.path.join(ROOT, 'tools'))
from convert_cityscapes import convert_cityscapes  # noqa: E402

# label id -> train id, from the Cityscapes definition (cityscapesScripts).
OFFICIAL = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8,
            22: 9, 23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16,
            32: 17, 33: 18}


def _to_label_ids(root):
    """Replace every labelTrainIds file by a labelIds file with the same
    classes (train id t -> its label id; 255 -> 0 'unlabeled')."""
    inverse = np.zeros(256, np.uint8)
    for label_id, train_id in OFFICIAL.items():
        inverse[train_id] = label_id
    for dirpath, _, names in os.walk(os.path.join(root, 'gtFine')):
        for name in names:
            path = os.path.join(dirpath, name)
            train_ids = np.array(Image.open(path))
            Image.fromarray(inverse[train_ids]).save(
                path.replace(cs.TRAIN_IDS_SUFFIX, cs.LABEL_IDS_SUFFIX))
            os.remove(path)


def test_scans_the_layout_and_loads_train_ids(cityscapes_root):
    root, labels = cityscapes_root
    ds = Cityscapes(transforms=[Normalize()], dataset_root=root, mode='train')
    assert manager.DATASETS['Cityscapes'] is Cityscapes
    assert len(ds) == 2 and ds.num_classes == 19 and ds.ignore_index == 255
    names = [os.path.basename(p) for p, _ in ds.file_list]
    assert names == ['aachen_000000_000019_leftImg8bit.png',
                     'bonn_000001_000019_leftImg8bit.png']
    assert ds.file_list[0][1] == os.path.join(
        root, 'gtFine', 'train', 'aachen',
        'aachen_000000_000019_gtFine_labelTrainIds.png')
    s = ds[0]
    np.testing.assert_array_equal(s['label'], labels['aachen_000000_000019'])
    assert s['img'].shape == (3, 4, 6) and s['gt_fields'] == ['label']
    val = Cityscapes([Normalize()], root, mode='val')
    assert len(val) == 1 and val[0]['gt_fields'] == []
    test = Cityscapes([Normalize()], root, mode='test')
    assert test.file_list[0][1] is None and 'label' not in test[0]


def test_class_metadata():
    assert (Cityscapes.NUM_CLASSES, Cityscapes.IGNORE_INDEX) == (19, 255)
    assert len(Cityscapes.CLASS_NAMES) == 19 and len(Cityscapes.PALETTE) == 19
    assert Cityscapes.CLASS_NAMES[:3] == ('road', 'sidewalk', 'building')
    assert [Cityscapes.CLASS_NAMES[i] for i in (8, 10, 11, 13, 18)] == [
        'vegetation', 'sky', 'person', 'car', 'bicycle']
    assert Cityscapes.PALETTE[0] == [128, 64, 128]
    assert Cityscapes.PALETTE[10] == [70, 130, 180]
    assert Cityscapes.PALETTE[13] == [0, 0, 142]
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c)
               for c in Cityscapes.PALETTE)


def test_label_ids_to_train_ids_matches_the_official_table():
    ids = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = cs.label_ids_to_train_ids(ids)
    expected = np.array([OFFICIAL.get(i, 255) for i in range(256)])
    np.testing.assert_array_equal(out.ravel(), expected)
    wide = np.array([[7, 26, 300, 65535]], np.int32)
    np.testing.assert_array_equal(cs.label_ids_to_train_ids(wide),
                                  [[0, 13, 255, 255]])


def test_converts_label_ids_on_load_and_says_so_once(cityscapes_root, caplog):
    root, labels = cityscapes_root
    _to_label_ids(root)
    log = logging.getLogger('paddleseg')
    log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger='paddleseg'):
            ds = Cityscapes([RandomPaddingCrop(crop_size=(6, 4))], root)
            Cityscapes([Normalize()], root)
    finally:
        log.removeHandler(caplog.handler)
    messages = [r.getMessage() for r in caplog.records
                if 'convert_cityscapes.py' in r.getMessage()]
    assert len(messages) == 1 and '2 of 2 labels' in messages[0]
    assert ds.file_list[0][1].endswith('_gtFine_labelIds.png')
    # RandomPaddingCrop to the same size keeps the label; its 255 pixel was
    # stored as id 0 ('unlabeled'), which maps back to 255.
    np.testing.assert_array_equal(ds[0]['label'],
                                  labels['aachen_000000_000019'])


def test_convert_tool_writes_train_ids_next_to_label_ids(cityscapes_root):
    root, labels = cityscapes_root
    _to_label_ids(root)
    assert convert_cityscapes(root) == (3, 0)
    assert convert_cityscapes(root) == (0, 3)  # existing files are kept
    path = os.path.join(root, 'gtFine', 'val', 'lindau',
                        'lindau_000000_000019_gtFine_labelTrainIds.png')
    np.testing.assert_array_equal(np.array(Image.open(path)),
                                  labels['lindau_000000_000019'])
    assert not [n for _, _, files in os.walk(root) for n in files
                if n.endswith('.tmp.png')]
    ds = Cityscapes([Normalize()], root, mode='val')
    assert ds.file_list[0][1] == path  # train ids are preferred


def test_convert_tool_cli(cityscapes_root, tmp_path):
    root, _ = cityscapes_root
    _to_label_ids(root)
    cmd = [sys.executable, os.path.join(ROOT, 'tools', 'convert_cityscapes.py')]
    proc = subprocess.run(cmd + ['--dataset_root', root, '--num_workers', '2'],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert 'Wrote 3 ' in proc.stdout
    proc = subprocess.run(cmd + ['--dataset_root', str(tmp_path / 'none')],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and 'gtFine' in proc.stderr


def test_missing_root_empty_split_and_missing_label(cityscapes_root, tmp_path):
    root, _ = cityscapes_root
    with pytest.raises(DataError, match='/no/cityscapes/here'):
        Cityscapes([], '/no/cityscapes/here')
    with pytest.raises(DataError, match="split 'train' has no images.*"
                       'leftImg8bit'):
        Cityscapes([], str(tmp_path))
    os.remove(os.path.join(root, 'gtFine', 'train', 'bonn',
                           'bonn_000001_000019_gtFine_labelTrainIds.png'))
    with pytest.raises(DataError, match=r"'.*bonn_000001_000019_leftImg8bit."
                       r"png' has no label: neither '.*labelTrainIds.png'"):
        Cityscapes([], root)


def test_bad_mode_is_a_value_error(cityscapes_root):
    with pytest.raises(ValueError, match="got 'training'"):
        Cityscapes([], cityscapes_root[0], mode='training')
