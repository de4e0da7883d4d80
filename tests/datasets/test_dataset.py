"""The file-list Dataset: samples per mode, attributes, and every DataError
case (each message names the file)."""

import os

import numpy as np
import paddle
import pytest

import paddleseg  # noqa: F401  (registers components)
from paddleseg.core.data import build_train_loader
from paddleseg.cvlibs import manager
from paddleseg.datasets import Dataset
from paddleseg.transforms import Normalize, Padding, RandomHorizontalFlip, Resize
from paddleseg.utils.errors import DataError


def _dataset(root, paths, mode='train', transforms=None, **kwargs):
    kwargs.setdefault(mode + '_path', paths[mode])
    return Dataset(mode=mode, dataset_root=root, num_classes=3,
                   transforms=transforms if transforms is not None else
                   [Normalize()], **kwargs)


def test_train_sample_transforms_label_with_image(list_root):
    root, paths, pairs = list_root
    ds = _dataset(root, paths, transforms=[Resize(target_size=(12, 8)),
                                           Normalize()])
    assert len(ds) == 3 and ds.mode == 'train' and ds.num_classes == 3
    assert ds.ignore_index == 255
    assert ds.file_list[1] == (os.path.join(root, 'images/1.png'),
                               os.path.join(root, 'labels/1.png'))
    s = ds[1]
    img, label = pairs[1]
    assert s['img'].shape == (3, 8, 12) and s['img'].dtype == np.float32
    assert s['label'].shape == (8, 12) and s['label'].dtype == np.int64
    np.testing.assert_array_equal(s['label'][::2, ::2], label)
    np.testing.assert_allclose(s['img'][:, 0, 0], img[0, 0] / 127.5 - 1,
                               atol=1e-5)
    assert s['trans_info'] == [('resize', (4, 6))]
    assert s['gt_fields'] == ['label']
    assert s['img_path'].endswith('1.png') and s['label_path'].endswith('1.png')


def test_val_sample_keeps_label_at_original_size(list_root):
    root, paths, pairs = list_root
    ds = _dataset(root, paths, mode='val',
                  transforms=[Padding(target_size=(8, 8)), Normalize()])
    s = ds[0]
    assert s['img'].shape == (3, 8, 8)
    np.testing.assert_array_equal(s['label'], pairs[3][1])
    assert s['label'].dtype == np.int64
    assert s['gt_fields'] == [] and s['trans_info'] == [('padding', (4, 6))]


def test_test_list_with_images_only(list_root):
    root, paths, _ = list_root
    ds = _dataset(root, paths, mode='test')
    assert ds.file_list == [(os.path.join(root, 'images/3.png'), None)]
    s = ds[0]
    assert 'label' not in s and s['img'].shape == (3, 4, 6)


def test_separator_and_class_attributes(list_root, tmp_path):
    root, _, pairs = list_root
    lst = tmp_path / 'comma.txt'
    lst.write_text('images/0.png,labels/0.png\n')
    ds = Dataset('train', root, 3, [], train_path=str(lst), separator=',')
    np.testing.assert_array_equal(ds[0]['label'], pairs[0][1])
    # Without Normalize the image keeps 0-255 values, as RGB.
    np.testing.assert_array_equal(ds[0]['img'][:, 1, 2], pairs[0][0][1, 2])
    assert manager.DATASETS['Dataset'] is Dataset
    assert (Dataset.NUM_CLASSES, Dataset.IGNORE_INDEX, Dataset.CLASS_NAMES,
            Dataset.PALETTE) == (None, None, None, None)


def test_edge_map_marks_class_boundaries(list_root, tmp_path, write_image,
                                         write_label):
    root, _, _ = list_root
    label = np.zeros((8, 8), np.uint8)
    label[:, 4:] = 1
    write_image(tmp_path / 'data' / 'e.png', np.zeros((8, 8, 3), np.uint8))
    write_label(tmp_path / 'data' / 'e_label.png', label)
    lst = tmp_path / 'edge.txt'
    lst.write_text('e.png e_label.png\n')
    s = Dataset('train', root, 2, [], train_path=str(lst), edge=True)[0]
    np.testing.assert_array_equal(s['edge'][0], [0, 0, 1, 1, 1, 1, 0, 0])
    assert s['edge'].dtype == np.int64


def test_works_with_the_training_loader(list_root):
    root, paths, _ = list_root
    ds = _dataset(root, paths, transforms=[RandomHorizontalFlip(), Normalize()])
    loader, _ = build_train_loader(ds, batch_size=2, seed=0)
    batch = next(iter(loader))
    assert isinstance(batch['img'], paddle.Tensor)
    assert batch['img'].shape == [2, 3, 4, 6] and batch['label'].shape == [2, 4, 6]
    assert batch['label'].dtype == paddle.int64


def _write_list(tmp_path, text, name='list.txt'):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_missing_root_names_the_path(tmp_path):
    with pytest.raises(DataError, match='/no/such/root'):
        Dataset('train', '/no/such/root', 3, [], train_path='x.txt')


def test_missing_and_empty_file_lists(list_root, tmp_path):
    root, _, _ = list_root
    missing = str(tmp_path / 'missing.txt')
    with pytest.raises(DataError, match="train file list '.*missing.txt' does "
                       'not exist'):
        Dataset('train', root, 3, [], train_path=missing)
    empty = _write_list(tmp_path, '\n\n')
    with pytest.raises(DataError, match='list.txt.*lists no samples'):
        Dataset('train', root, 3, [], train_path=empty)


def test_listed_file_missing(list_root, tmp_path):
    root, _, _ = list_root
    lst = _write_list(tmp_path, 'images/0.png labels/0.png\n'
                      'images/9.png labels/9.png\n')
    with pytest.raises(DataError, match=r"'.*images/9.png' listed in "
                       r"'.*list.txt' does not exist \(1 more files"):
        Dataset('train', root, 3, [], train_path=lst)


def test_malformed_line(list_root, tmp_path):
    root, _, _ = list_root
    lst = _write_list(tmp_path, 'images/0.png labels/0.png\nimages/1.png\n')
    with pytest.raises(DataError, match='Line 2 of file list .*separator'):
        Dataset('val', root, 3, [], val_path=lst)


def test_unreadable_image(list_root, tmp_path):
    root, _, _ = list_root
    with open(os.path.join(root, 'broken.png'), 'wb') as f:
        f.write(b'\x89PNG garbage')
    lst = _write_list(tmp_path, 'broken.png labels/0.png\n')
    with pytest.raises(DataError, match='broken.png.*cannot be decoded'):
        Dataset('train', root, 3, [], train_path=lst)[0]


def test_image_label_size_mismatch(list_root, tmp_path, write_label):
    root, _, _ = list_root
    write_label(os.path.join(root, 'small.png'), np.zeros((2, 2)))
    lst = _write_list(tmp_path, 'images/0.png small.png\n')
    with pytest.raises(DataError, match=r"'.*small.png' is 2x2 \(HxW\) but "
                       r"its image '.*0.png' is 4x6"):
        Dataset('train', root, 3, [], train_path=lst)[0]


def test_label_values_out_of_range(list_root, tmp_path, write_label):
    root, _, _ = list_root
    label = np.zeros((4, 6), np.uint8)
    label[1, 1], label[2, 2], label[3, 3] = 7, 255, 4
    write_label(os.path.join(root, 'bad_label.png'), label)
    lst = _write_list(tmp_path, 'images/0.png bad_label.png\n')
    with pytest.raises(DataError, match=r"'.*bad_label.png' holds values "
                       r'\[4, 7\] outside \[0, 3\)'):
        Dataset('val', root, 3, [], val_path=lst)[0]
    # The same values are fine with more classes; 255 is the ignore index.
    s = Dataset('val', root, 8, [], val_path=lst)[0]
    assert s['label'][2, 2] == 255


def test_rgb_label_is_rejected(list_root, tmp_path, write_image):
    root, _, _ = list_root
    write_image(os.path.join(root, 'rgb_label.png'),
                np.zeros((4, 6, 3), np.uint8))
    lst = _write_list(tmp_path, 'images/0.png rgb_label.png\n')
    with pytest.raises(DataError, match=r'rgb_label.png.*\(4, 6, 3\).*'
                       'single-channel'):
        Dataset('train', root, 3, [], train_path=lst)[0]


def test_transform_failure_names_the_image(list_root):
    root, paths, _ = list_root
    ds = _dataset(root, paths, transforms=[Padding(target_size=(2, 2))])
    with pytest.raises(DataError, match=r"Transforming image '.*0.png' failed"):
        ds[0]


@pytest.mark.parametrize('kwargs, match', [
    ({'mode': 'eval'}, "mode must be one of train, val, test, got 'eval'"),
    ({'num_classes': 0}, 'num_classes must be a positive integer'),
    ({'train_path': None}, "mode 'train' needs train_path"),
])
def test_bad_arguments(list_root, kwargs, match):
    root, paths, _ = list_root
    args = dict(mode='train', dataset_root=root, num_classes=3, transforms=[],
                train_path=paths['train'])
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        Dataset(**args)
