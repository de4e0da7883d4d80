"""Class-uniform sampling (NVIDIA semantic-segmentation's
``class_uniform_pct`` and ``class_uniform_tile``): crops centred on rare
classes as often as on common ones.

Each label is cut into ``floor(H / T) x floor(W / T)`` tiles (at least one:
an image smaller than a tile is one tile). For every tile and every class
present in it, the **centroid index** records ``(image, class, x, y)``, the
mean position of the class's pixels there (truncated to whole pixels). An
epoch of ``n`` samples then holds ``int(n * pct / P)`` centroid items for
each of the ``P`` classes present in the index and ``n`` minus those random
whole images; the dataset crops a centroid item so that the window contains
the centroid (:mod:`paddleseg.transforms.resize`).

The index is built once and cached as JSON in ``dataset_root/.class_uniform/``
(or, where that cannot be written, in the user cache folder
``$XDG_CACHE_HOME/paddleseg/class_uniform``). Its name holds a hash of the
format, tile size, classes, ignore index, the label reader and, for every
label file, its path relative to ``dataset_root``, size and modification
time (``stat``, not the bytes: a 3000-image set is keyed in milliseconds, and
an edited label gets a new mtime). A changed dataset therefore gets a new
index; a moved one (mtimes kept) reuses its own.

In a distributed run the first process of each machine (local rank 0)
builds a missing index while the others wait at a barrier of the process
group (which the scripts join before reading any data), so a builder that
dies ends the waiting ranks too instead of leaving them polling for a file
that never comes; then every rank reads the file. The index is a
function of the data alone and every process reads it back from the JSON, so
all ranks hold the same one, and :func:`compose_epoch` draws an epoch from
``(seed, epoch)`` alone: every rank, and a resumed run, sees the same epoch.
"""

import hashlib
import json
import os
import time

import numpy as np
import paddle
from tqdm import tqdm

from paddleseg.utils import logger
from paddleseg.utils.errors import DataError
from paddleseg.utils.fileio import atomic_write_text

__all__ = ['tile_edges', 'label_centroids', 'CentroidIndex', 'cache_key',
           'cache_folders', 'load_or_build', 'is_local_leader',
           'compose_epoch', 'report']

FORMAT = 1
CACHE_FOLDER = '.class_uniform'
WAIT_LOG_SECONDS = 30
# Salt of the epoch stream, so it differs from the sampler's plain shuffle.
_STREAM = 0x6375


def tile_edges(size, tile):
    """Edges of the ``max(floor(size / tile), 1)`` tiles along one axis.

    The tiles span the whole axis (each at least ``tile`` long when the axis
    is), where NVIDIA drops the strip after the last full tile.
    """
    count = max(size // tile, 1)
    return [i * size // count for i in range(count + 1)]


def label_centroids(label, num_classes, tile, ignore_index=255):
    """``[(class, x, y), ...]``: per tile and class present, the centroid.

    Args:
        label (np.ndarray): ``(H, W)`` class ids.
        num_classes (int): Classes are ``0 .. num_classes - 1``; other values
            (and ``ignore_index``) have no centroid.
        tile (int): Tile side in pixels.
        ignore_index (int): Value that is not a class.
    """
    label = np.asarray(label)
    ys, xs = (tile_edges(n, tile) for n in label.shape)
    found = []
    for y0, y1 in zip(ys, ys[1:]):
        for x0, x1 in zip(xs, xs[1:]):
            found.extend(_tile_centroids(label[y0:y1, x0:x1], num_classes,
                                         ignore_index, x0, y0))
    return found


def _tile_centroids(patch, num_classes, ignore_index, x0, y0):
    flat = patch.astype(np.int64).ravel()
    valid = (flat >= 0) & (flat < num_classes) & (flat != ignore_index)
    where = np.flatnonzero(valid)
    if not where.size:
        return []
    ids = flat[where]
    rows, cols = np.divmod(where, patch.shape[1])
    count = np.bincount(ids, minlength=num_classes)
    sum_y = np.bincount(ids, weights=rows, minlength=num_classes)
    sum_x = np.bincount(ids, weights=cols, minlength=num_classes)
    return [(int(c), x0 + int(sum_x[c] / count[c]),
             y0 + int(sum_y[c] / count[c])) for c in np.flatnonzero(count)]


class CentroidIndex:
    """The centroid items of a dataset: ``items[k] = (image, class, x, y)``.

    Args:
        items (array-like): ``(M, 4)`` integers.
        num_classes (int): The dataset's number of classes.
        tile (int): Tile side the index was built with.
    """

    def __init__(self, items, num_classes, tile):
        self.items = np.asarray(items, dtype=np.int64).reshape(-1, 4)
        self.num_classes = int(num_classes)
        self.tile = int(tile)

    def __len__(self):
        return len(self.items)

    @property
    def classes(self):
        """The classes that have at least one centroid, ascending."""
        return sorted(set(self.items[:, 1].tolist()))

    def counts(self):
        """``{class: number of centroids}`` of the classes present."""
        ids, n = np.unique(self.items[:, 1], return_counts=True)
        return dict(zip(ids.tolist(), n.tolist()))

    @classmethod
    def build(cls, label_paths, read_label, num_classes, tile, ignore_index):
        """Read every label (with a progress bar) and index its centroids."""
        items = []
        for image, path in enumerate(tqdm(
                label_paths, desc='class-uniform centroids', unit='img',
                dynamic_ncols=True, leave=False)):
            for c, x, y in label_centroids(read_label(path), num_classes,
                                           tile, ignore_index):
                items.append((image, c, x, y))
        return cls(items, num_classes, tile)

    def to_payload(self, key, labels):
        return {'format': FORMAT, 'key': key, 'tile': self.tile,
                'num_classes': self.num_classes, 'labels': list(labels),
                'centroids': self.items.tolist()}

    @classmethod
    def from_payload(cls, payload, key):
        """The index of a parsed cache file (DataError if it is not one of
        ``key``)."""
        if not isinstance(payload, dict) or payload.get('format') != FORMAT \
                or payload.get('key') != key:
            raise DataError('not a class-uniform index of key {}'.format(key))
        return cls(payload['centroids'], payload['num_classes'],
                   payload['tile'])


def cache_key(label_paths, root, tile, num_classes, ignore_index, reader):
    """The hash naming a dataset's index (see the module docstring).

    Args:
        label_paths (list[str]): Label files, in the dataset's order.
        root (str): Paths enter the hash relative to this folder.
        tile (int): Tile size.
        num_classes (int): Number of classes.
        ignore_index (int): Ignore value.
        reader (str): Name of the label reader (a converting reader gives
            other ids from the same files).
    """
    digest = hashlib.sha256(json.dumps(
        [FORMAT, int(tile), int(num_classes), ignore_index, reader]).encode())
    for path in label_paths:
        st = os.stat(path)
        digest.update('{}\0{}\0{}\n'.format(
            os.path.relpath(path, root), st.st_size,
            st.st_mtime_ns).encode('utf-8', 'surrogateescape'))
    return digest.hexdigest()[:24]


def cache_folders(dataset_root):
    """Where indexes are looked for and written, in order: next to the data,
    then the user cache folder."""
    user = os.environ.get('XDG_CACHE_HOME') or os.path.join(
        os.path.expanduser('~'), '.cache')
    return [os.path.join(dataset_root, CACHE_FOLDER),
            os.path.join(user, 'paddleseg', 'class_uniform')]


def _read(path, key):
    try:
        with open(path, encoding='utf-8') as f:
            return CentroidIndex.from_payload(json.load(f), key)
    except (OSError, ValueError, KeyError, TypeError, DataError) as e:
        logger.warning('Ignoring the unreadable class-uniform index %s (%s); '
                       'it is rebuilt.', path, e)
        return None


def _find(folders, name, key):
    for folder in folders:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            index = _read(path, key)
            if index is not None:
                return path, index
    return None, None


def _write(folders, name, text):
    """Write ``text`` into the first folder that takes it; return the path."""
    errors = []
    for folder in folders:
        path = os.path.join(folder, name)
        try:
            os.makedirs(folder, exist_ok=True)
            atomic_write_text(path, text)
        except OSError as e:
            errors.append('{}: {}'.format(folder, e))
            continue
        if errors:
            logger.info('Could not write the class-uniform index next to the '
                        'data (%s); it is cached in %s instead.', errors[0],
                        folder)
        return path
    raise DataError('The class-uniform index cannot be written to any of {} '
                    '({}); make one of them writable or set XDG_CACHE_HOME to '
                    'a writable folder.'.format(folders, '; '.join(errors)))


def load_or_build(name, key, folders, build, labels, is_builder=True,
                  poll_seconds=0.5, _alone=False):
    """The cached index called ``name`` (with ``key``), built when missing.

    Args:
        name (str): File name of the index.
        key (str): Its :func:`cache_key`.
        folders (list[str]): :func:`cache_folders`.
        build (callable): ``build() -> CentroidIndex``.
        labels (list[str]): Label names recorded in the file (for people
            reading it).
        is_builder (bool): This process builds a missing index; otherwise it
            waits until another process has written it.
        poll_seconds (float): Wait between looks for the file.

    Returns:
        tuple: ``(CentroidIndex, path of its file, built here)``.
    """
    if _in_process_group() and not _alone:
        return _load_or_build_together(name, key, folders, build, labels,
                                       is_builder)
    path, index = _find(folders, name, key)
    if index is not None:
        return index, path, False
    if not is_builder:
        return _wait(folders, name, key, poll_seconds) + (False, )
    logger.info('Building the class-uniform index %s (once; later runs read '
                'it).', name)
    payload = build().to_payload(key, labels)
    path = _write(folders, name, json.dumps(payload, separators=(',', ':')))
    # Read back what was written, as the waiting processes do.
    path, index = _find([os.path.dirname(path)], name, key)
    if index is None:
        raise DataError('The class-uniform index {} was written but cannot '
                        'be read back.'.format(path))
    return index, path, True


def _in_process_group():
    return (paddle.distributed.get_world_size() > 1 and
            paddle.distributed.is_initialized())


def _load_or_build_together(name, key, folders, build, labels, is_builder):
    """Distributed: the builders find or build the index, everyone meets at
    a barrier, then the others read it."""
    built, path, index = False, None, None
    if is_builder:
        path, index = _find(folders, name, key)
        if index is None:
            index, path, built = load_or_build(name, key, folders, build,
                                               labels, is_builder=True,
                                               _alone=True)
    paddle.distributed.barrier()
    if index is None:
        path, index = _find(folders, name, key)
        if index is None:
            raise DataError(
                'The class-uniform index {} is not in {} after local rank 0 '
                'built it; on several machines every machine needs it in its '
                'own dataset_root or cache.'.format(name, ' or '.join(folders)))
    return index, path, built


def is_local_leader():
    """Whether this process builds a missing index: the only process, or
    the first of its machine in a launch (``PADDLE_LOCAL_RANK`` 0; without
    it, global rank 0)."""
    if paddle.distributed.get_world_size() <= 1:
        return True
    local = os.environ.get('PADDLE_LOCAL_RANK')
    rank = int(local) if local is not None else paddle.distributed.get_rank()
    return rank == 0


def _wait(folders, name, key, poll_seconds):
    start = last_log = time.monotonic()
    while True:
        path, index = _find(folders, name, key)
        if index is not None:
            return index, path
        if time.monotonic() - last_log >= WAIT_LOG_SECONDS:
            last_log = time.monotonic()
            logger.info('Waiting %.0f s for local rank 0 to write the '
                        'class-uniform index %s in %s.',
                        last_log - start, name, ' or '.join(folders))
        time.sleep(poll_seconds)


def compose_epoch(index, num_images, pct, seed, epoch, offset, rows=None):
    """The ``num_images`` sample indices of one epoch, shuffled.

    Indices below ``offset`` are whole images (drawn without repetition from
    ``0 .. num_images - 1``); ``offset + k`` is centroid item ``k`` of
    ``index``. Each present class gets ``int(num_images * pct / P)`` items
    (its centroids in a random order, repeated if it has fewer).

    Args:
        index (CentroidIndex): The centroids.
        num_images (int): Epoch length, and the images drawn at random.
        pct (float): Share of the epoch given to centroid items, in [0, 1].
        seed (int): Base seed.
        epoch (int): Epoch number.
        offset (int): Sample index of centroid item 0.
        rows (np.ndarray, optional): Centroid items allowed in this epoch
            (default: all).
    """
    rng = np.random.default_rng([int(seed), int(epoch), _STREAM])
    rows = np.arange(len(index)) if rows is None else np.asarray(rows)
    classes = index.items[rows, 1]
    present = np.unique(classes)
    per_class = int(num_images * pct / len(present)) if len(present) else 0
    parts = [rng.permutation(num_images)[:num_images -
                                        per_class * len(present)]]
    for c in present:
        mine = rows[classes == c]
        picks = rng.permutation(len(mine))[np.arange(per_class) % len(mine)]
        parts.append(offset + mine[picks])
    return rng.permutation(np.concatenate(parts).astype(np.int64))


def report(index, num_images, pct, num_classes, path):
    """Log what an epoch holds (and warn when no class-centred crop fits)."""
    counts = index.counts()
    per_class = int(num_images * pct / len(counts)) if counts else 0
    absent = sorted(set(range(num_classes)) - set(counts))
    logger.info(
        'Class-uniform sampling: %d centroids of %d classes (%s); an epoch '
        'of %d holds %d crops per class and %d random images.%s', len(index),
        len(counts), path, num_images, per_class,
        num_images - per_class * len(counts),
        ' Classes absent from the labels (not sampled): {}.'.format(absent)
        if absent else '')
    if not per_class:
        logger.warning(
            'class_uniform_pct %s x %d images is less than one crop for each '
            'of the %d classes present; no class-centred crops are drawn.',
            pct, num_images, len(counts))
