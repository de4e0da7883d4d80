"""Tiny on-disk datasets: a file-list dataset and a Cityscapes layout."""

import os

import cv2
import numpy as np
import pytest
from PIL import Image


def _write_image(path, rgb):
    """Write an RGB uint8 array as a PNG (creating folders)."""
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return str(path)


def _write_label(path, label):
    """Write a uint8 label map as a grayscale PNG (creating folders)."""
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    Image.fromarray(np.asarray(label, np.uint8)).save(str(path))
    return str(path)


@pytest.fixture
def write_image():
    """``write_image(path, rgb)`` writes an RGB uint8 array as a PNG."""
    return _write_image


@pytest.fixture
def write_label():
    """``write_label(path, label)`` writes a grayscale label PNG."""
    return _write_label


def tiny_pair(seed, h=4, w=6, num_classes=3):
    rng = np.random.RandomState(seed)
    img = rng.randint(0, 256, (h, w, 3)).astype(np.uint8)
    label = rng.randint(0, num_classes, (h, w)).astype(np.uint8)
    label[0, 0] = 255
    return img, label


@pytest.fixture
def list_root(tmp_path):
    """A file-list dataset of 3 train and 1 val 4x6 images, 3 classes.

    Returns (root, {'train': list path, 'val': ..., 'test': ...}, pairs).
    """
    root = tmp_path / 'data'
    pairs = {}
    lines = {'train': [], 'val': [], 'test': []}
    for i, split in enumerate(['train', 'train', 'train', 'val']):
        img, label = tiny_pair(i)
        _write_image(root / 'images' / '{}.png'.format(i), img)
        _write_label(root / 'labels' / '{}.png'.format(i), label)
        pairs[i] = (img, label)
        lines[split].append('images/{0}.png labels/{0}.png\n'.format(i))
    lines['test'] = ['images/3.png\n']
    paths = {}
    for split, text in lines.items():
        paths[split] = str(root / '{}.txt'.format(split))
        with open(paths[split], 'w') as f:
            f.writelines(['\n'] + text)  # blank lines are skipped
    return str(root), paths, pairs


@pytest.fixture
def cityscapes_root(tmp_path):
    """A Cityscapes layout: 2 train images (2 cities), 1 val, 1 test, with
    labels as labelTrainIds. Returns (root, {name: train-id label})."""
    root = tmp_path / 'cityscapes'
    labels = {}
    for split, city, name in [('train', 'bonn', 'bonn_000001_000019'),
                              ('train', 'aachen', 'aachen_000000_000019'),
                              ('val', 'lindau', 'lindau_000000_000019'),
                              ('test', 'berlin', 'berlin_000000_000019')]:
        img, label = tiny_pair(len(labels), num_classes=19)
        _write_image(root / 'leftImg8bit' / split / city /
                    (name + '_leftImg8bit.png'), img)
        if split != 'test':
            _write_label(root / 'gtFine' / split / city /
                        (name + '_gtFine_labelTrainIds.png'), label)
        labels[name] = label
    return str(root), labels
