"""Class-uniform sampling: centroids, epochs, crops, the cached index,
ranks and resuming (NVIDIA#95, #106, #127 as regression cases)."""

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from paddleseg.datasets import Dataset, class_uniform as cu
from paddleseg.transforms import (Normalize, RandomHorizontalFlip,
                                  RandomPaddingCrop, RandomVerticalFlip,
                                  ResizeStepScaling)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))


def _squares_label(seed, h=24, w=32, classes=(1, 2, 3)):
    """Background 0 with one 7x7 square of each class, at a random height,
    in its own band of 8 columns (squares never overlap)."""
    rng = np.random.RandomState(seed)
    label = np.zeros((h, w), np.uint8)
    for band, c in enumerate(classes):
        y, x = rng.randint(0, h - 6), 8 * band + rng.randint(0, 2)
        label[y:y + 7, x:x + 7] = c
    return label


@pytest.fixture
def square_set(tmp_path, write_image, write_label):
    """``make(n, classes_of=lambda i: (1, 2, 3), h, w)`` writes a file-list
    train set of squares and returns its root."""

    def make(n=20, classes_of=lambda i: (1, 2, 3), h=24, w=32):
        root = tmp_path / 'data'
        lines = []
        for i in range(n):
            label = _squares_label(i, h, w, classes_of(i))
            img = np.repeat(label[:, :, None] * 40, 3, axis=2).astype(np.uint8)
            write_image(root / 'img' / '{}.png'.format(i), img)
            write_label(root / 'lab' / '{}.png'.format(i), label)
            lines.append('img/{0}.png lab/{0}.png\n'.format(i))
        (root / 'train.txt').write_text(''.join(lines))
        return str(root)

    return make


def _dataset(root, transforms=None, pct=0.5, tile=16, num_classes=5):
    return Dataset(mode='train', dataset_root=root, num_classes=num_classes,
                   transforms=transforms or [RandomPaddingCrop([8, 8])],
                   train_path=os.path.join(root, 'train.txt'),
                   class_uniform_pct=pct, class_uniform_tile=tile)


def test_tile_edges_cover_the_axis_and_a_small_image_is_one_tile():
    assert cu.tile_edges(2048, 1024) == [0, 1024, 2048]
    assert cu.tile_edges(1024, 1024) == [0, 1024]
    assert cu.tile_edges(480, 1024) == [0, 480]  # NVIDIA: no tile at all
    assert cu.tile_edges(2500, 1024) == [0, 1250, 2500]  # no dropped strip


def test_label_centroids_by_hand():
    label = np.full((4, 8), 255, np.uint8)
    label[0, 0] = label[1, 1] = 1           # left tile: class 1 at (0,0),(1,1)
    label[3, 2] = 2                         # left tile: class 2 at (2, 3)
    label[0:2, 4:8] = 1                     # right tile: class 1, 2x4 block
    label[3, 7] = 9                         # out of range: no centroid
    found = cu.label_centroids(label, num_classes=3, tile=4)
    # (class, x, y); x and y are truncated means, offset by the tile origin.
    assert found == [(1, 0, 0), (2, 2, 3), (1, 4 + 1, 0)]
    # A tile larger than the image: the whole image is one tile (NVIDIA#106);
    # class 1: x = (0 + 1 + 2 * (4 + 5 + 6 + 7)) / 10 = 4.5, y = 5 / 10.
    assert cu.label_centroids(label, 3, tile=1024) == [(1, 4, 0), (2, 2, 3)]


def test_an_epoch_holds_the_counts_per_class(square_set):
    ds = _dataset(square_set(n=20))
    assert ds.centroids.classes == [0, 1, 2, 3]
    order = ds.epoch_order(seed=0, epoch=0)
    assert len(order) == len(ds) == 20
    n = len(ds.file_list)
    random_images = order[order < n]
    items = ds.centroids.items[order[order >= n] - n]
    per_class = int(20 * 0.5 / 4)
    assert {c: int((items[:, 1] == c).sum()) for c in range(4)} == {
        0: per_class, 1: per_class, 2: per_class, 3: per_class}
    assert len(random_images) == 20 - 4 * per_class
    assert len(set(random_images.tolist())) == len(random_images)
    # Deterministic from (seed, epoch); another epoch or seed differs.
    np.testing.assert_array_equal(order, ds.epoch_order(0, 0))
    assert not np.array_equal(order, ds.epoch_order(0, 1))
    assert not np.array_equal(order, ds.epoch_order(1, 0))


def test_classes_absent_from_the_data_are_not_sampled(square_set, caplog):
    # num_classes 5 but class 4 never occurs and class 3 only in image 0:
    # no KeyError (NVIDIA#95), and the absent class is named in the log.
    root = square_set(n=12, classes_of=lambda i: (1, 2, 3) if i == 0 else
                      (1, 2))
    with caplog.at_level(logging.INFO, logger='paddleseg'):
        ds = _dataset(root, pct=1.0)
    assert ds.centroids.classes == [0, 1, 2, 3]
    assert 'absent from the labels (not sampled): [4]' in caplog.text
    order = ds.epoch_order(3, 0)
    items = ds.centroids.items[order[order >= 12] - 12]
    assert np.bincount(items[:, 1], minlength=5).tolist() == [3, 3, 3, 3, 0]
    # Class 3's single centroid is repeated to fill its share.
    assert len({tuple(r) for r in items[items[:, 1] == 3]}) == 1
    # A second dataset reads the cached file and composes the same epoch.
    again = _dataset(root, pct=1.0)
    np.testing.assert_array_equal(again.epoch_order(3, 0), order)


def test_images_smaller_than_a_tile_give_every_class(square_set):
    # NVIDIA#106: 6 classes expected, 4 found, with images below the tile.
    root = square_set(n=6, classes_of=lambda i: (1, 2, 3, 4))
    ds = _dataset(root, tile=1024)
    assert ds.centroids.classes == [0, 1, 2, 3, 4]
    assert (ds.centroids.counts()[1]) == 6  # one centroid per image


def test_crops_contain_their_centroid(square_set):
    ds = _dataset(square_set(n=20), transforms=[
        ResizeStepScaling(0.75, 2.0, 0), RandomHorizontalFlip(),
        RandomVerticalFlip(0.5), RandomPaddingCrop([8, 8]), Normalize()])
    n = len(ds.file_list)
    checked = 0
    for epoch in range(3):
        for k, index in enumerate(ds.epoch_order(7, epoch)):
            if index < n:
                continue
            np.random.seed(epoch * 100 + k)
            sample = ds[int(index)]
            cls = ds.centroids.items[index - n, 1]
            x, y = sample['centroid']
            assert 0 <= x < 8 and 0 <= y < 8
            assert sample['label'].shape == (8, 8)
            if cls:  # a square (or the part in a tile) is convex: its
                # centroid pixel is of its class (the background is not)
                assert sample['label'][int(y), int(x)] == cls
            checked += 1
    assert checked == 3 * 4 * int(20 * 0.5 / 4)


def test_the_index_is_cached_and_reused(square_set, monkeypatch):
    root = square_set(n=6)
    first = _dataset(root)
    files = os.listdir(os.path.join(root, '.class_uniform'))
    assert len(files) == 1 and files[0].startswith('Dataset_tile16_')
    payload = json.load(open(os.path.join(root, '.class_uniform', files[0])))
    assert payload['labels'][0] == os.path.join('lab', '0.png')

    def no_build(*args, **kwargs):
        raise AssertionError('the index was built again')

    monkeypatch.setattr(cu.CentroidIndex, 'build', no_build)
    second = _dataset(root)
    np.testing.assert_array_equal(first.centroids.items,
                                  second.centroids.items)


def test_a_changed_dataset_rebuilds_the_index(square_set, write_label):
    root = square_set(n=6)
    first = _dataset(root)
    # A label rewritten with other content: a new key, a new index.
    write_label(os.path.join(root, 'lab', '2.png'), np.full((24, 32), 4,
                                                             np.uint8))
    second = _dataset(root)
    assert len(os.listdir(os.path.join(root, '.class_uniform'))) == 2
    assert 4 in second.centroids.classes and 4 not in first.centroids.classes
    # Another tile size is another index too.
    _dataset(root, tile=8)
    assert len(os.listdir(os.path.join(root, '.class_uniform'))) == 3
    # The key is the stat of the labels: a new mtime alone rebuilds.
    path = os.path.join(root, 'lab', '3.png')
    st = os.stat(path)
    key = cu.cache_key([path], root, 16, 5, 255, 'r')
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert cu.cache_key([path], root, 16, 5, 255, 'r') != key


def test_unwritable_root_falls_back_to_the_user_cache(square_set, tmp_path,
                                                      monkeypatch, caplog):
    root = square_set(n=6)
    # A file where the cache folder should be: the folder cannot be made
    # (as on a read-only dataset; chmod does not stop root).
    open(os.path.join(root, '.class_uniform'), 'w').close()
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'user_cache'))
    with caplog.at_level(logging.INFO, logger='paddleseg'):
        ds = _dataset(root)
    user = tmp_path / 'user_cache' / 'paddleseg' / 'class_uniform'
    assert len(os.listdir(user)) == 1
    assert 'cached in {} instead'.format(user) in caplog.text
    again = _dataset(root)  # found in the user cache, not rebuilt
    np.testing.assert_array_equal(again.centroids.items, ds.centroids.items)


def test_a_corrupt_cache_file_is_rebuilt(square_set, caplog):
    root = square_set(n=6)
    first = _dataset(root)
    folder = os.path.join(root, '.class_uniform')
    path = os.path.join(folder, os.listdir(folder)[0])
    open(path, 'w').write('{"format": 1, "key": ')  # killed mid-write
    with caplog.at_level(logging.WARNING, logger='paddleseg'):
        again = _dataset(root)
    assert 'unreadable class-uniform index' in caplog.text
    np.testing.assert_array_equal(again.centroids.items, first.centroids.items)


def test_off_by_default_and_argument_errors(square_set):
    root = square_set(n=4)
    plain = _dataset(root, pct=0)
    assert plain.epoch_order is None and plain.centroids is None
    assert not os.path.exists(os.path.join(root, '.class_uniform'))
    with pytest.raises(ValueError, match=r'class_uniform_pct must be a number '
                       r'in \[0, 1\].*1.5'):
        _dataset(root, pct=1.5)
    with pytest.raises(ValueError, match='class_uniform_tile must be a '
                       'positive integer'):
        _dataset(root, tile=0)
    with pytest.raises(ValueError, match="for training datasets, but mode is "
                       "'val'"):
        Dataset(mode='val', dataset_root=root, num_classes=5, transforms=[],
                val_path=os.path.join(root, 'train.txt'),
                class_uniform_pct=0.5)


def test_sample_indices_past_the_file_list_name_their_files(square_set):
    from paddleseg.core.data import SafeDataset
    ds = _dataset(square_set(n=4))
    item = len(ds.file_list) + 5
    image = ds.centroids.items[5, 0]
    assert ds.files_of(item) == ds.file_list[image]
    # A failing centroid item is reported with its files, not an IndexError.
    ds.transforms.transforms.insert(0, lambda data: 1 / 0)
    message = SafeDataset(ds)[item]['__error__']
    assert ds.file_list[image][0] in message and 'ZeroDivisionError' in message


RANK_SCRIPT = r"""
import json, os, sys
sys.path.insert(0, {root!r})
from paddleseg.core.data import ResumableBatchSampler
from paddleseg.datasets import Dataset
import paddleseg.datasets.class_uniform as cu
waited = []
wait = cu._wait
cu._wait = lambda *a: waited.append(1) or wait(*a)
build = cu.CentroidIndex.build
cu.CentroidIndex.build = lambda *a: print('BUILT') or build(*a)
rank = int(os.environ['PADDLE_TRAINER_ID'])
if rank == 0:  # start late, so that rank 1 has to wait for the file
    import time
    time.sleep(3)
ds = Dataset(mode='train', dataset_root={data!r}, num_classes=5,
             transforms=[], train_path={data!r} + '/train.txt',
             class_uniform_pct=0.5, class_uniform_tile=16)
sampler = ResumableBatchSampler(len(ds), 2, seed=4, rank=rank, world_size=2,
                                epoch_order=ds.epoch_order)
it = iter(sampler)
batches = [[i for i, _ in next(it)]
           for _ in range(3 * sampler.batches_per_epoch())]
json.dump({{'waited': bool(waited),
           'epochs': [ds.epoch_order(4, e).tolist() for e in range(3)],
           'batches': batches, 'items': ds.centroids.items.tolist()}},
          open({out!r} + '/rank%d.json' % rank, 'w'))
"""


def test_two_ranks_build_once_and_see_the_same_epochs(square_set, tmp_path):
    data = square_set(n=10)
    script = tmp_path / 'rank.py'
    script.write_text(RANK_SCRIPT.format(root=ROOT, data=data,
                                         out=str(tmp_path)))
    procs = {}
    for rank in (0, 1):
        env = dict(os.environ, PADDLE_TRAINER_ID=str(rank),
                   PADDLE_LOCAL_RANK=str(rank), PADDLE_TRAINERS_NUM='2',
                   OMP_NUM_THREADS='1')
        procs[rank] = subprocess.Popen(
            [sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
    logs = {r: p.communicate(timeout=300)[0] for r, p in procs.items()}
    for r, p in procs.items():
        assert p.returncode == 0, logs[r][-3000:]
    r0, r1 = (json.load(open(tmp_path / 'rank{}.json'.format(r)))
              for r in (0, 1))
    # Rank 0 built the index; rank 1 found none, waited and read its file.
    assert 'BUILT' in logs[0] and not r0['waited']
    assert 'BUILT' not in logs[1] and r1['waited']
    assert r0['items'] == r1['items'] and r0['epochs'] == r1['epochs']
    # The sampler cuts each shared epoch into disjoint shards.
    per_epoch = len(r0['batches']) // 3
    for e, order in enumerate(r0['epochs']):
        b0 = sum(r0['batches'][e * per_epoch:(e + 1) * per_epoch], [])
        b1 = sum(r1['batches'][e * per_epoch:(e + 1) * per_epoch], [])
        assert b0 == order[0::2][:len(b0)] and b1 == order[1::2][:len(b1)]


def test_resume_matches_an_uninterrupted_run(square_set, tmp_path):
    import shutil
    import paddle
    from paddleseg.core.trainer import train
    data = square_set(n=8)

    def run(save_dir, resume=None):
        paddle.seed(0)
        np.random.seed(0)
        ds = _dataset(data, transforms=[ResizeStepScaling(0.75, 1.5, 0),
                                        RandomHorizontalFlip(),
                                        RandomPaddingCrop([8, 8]),
                                        Normalize()], pct=1.0)
        net = _TinyNet()
        opt = paddle.optimizer.Momentum(0.05, momentum=0.9,
                                        parameters=net.parameters())
        loss = _CE()
        train(net, ds, opt, {'types': [loss], 'coef': [1.0]}, iters=10,
              batch_size=2, save_dir=str(save_dir), resume_model=resume,
              save_interval=3, log_iters=5, seed=2)
        return {k: v.numpy().copy() for k, v in net.state_dict().items()}

    full = run(tmp_path / 'full')
    run(tmp_path / 'part')
    for name in ('iter_6', 'iter_9', 'iter_10'):  # killed after iteration 3
        shutil.rmtree(tmp_path / 'part' / name)
    resumed = run(tmp_path / 'part', resume='auto')
    for k in full:
        np.testing.assert_array_equal(full[k], resumed[k], err_msg=k)


def _TinyNet():
    import paddle

    class TinyNet(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.conv = paddle.nn.Conv2D(3, 5, 3, padding=1)

        def forward(self, x):
            return [self.conv(x)]

    return TinyNet()


class _CE:
    ignore_index = 255

    def __call__(self, logit, label):
        import paddle
        return paddle.nn.functional.cross_entropy(logit, label, axis=1,
                                                  ignore_index=255)
