"""Training data: an order that can be checkpointed and resumed exactly, and
a loader that cannot hang on a bad sample.

Two pieces make a resumed run see the same batches, with the same random
augmentations, as an uninterrupted one, whatever ``num_workers`` is:

* :class:`ResumableBatchSampler` draws each epoch's order from
  ``(seed, epoch)`` alone, shards it across ranks, and can start at any
  ``(epoch, batch)`` position;
* :class:`SeededDataset` reseeds Python's and NumPy's global RNGs from
  ``(seed, epoch, position)`` before each sample's transforms run, so random
  crops and flips depend on the sample's place in the schedule, not on which
  worker process loaded it or on how many samples came before a restart.

Paddle's ``DataLoader`` loads batches in a thread (``num_workers=0``) or in
worker processes, and an exception raised there kills that thread while the
training loop waits for its next batch forever. So nothing is raised there:
:class:`SeededDataset` and :func:`collate_batch` turn a failure into a batch
that carries the message (naming the file and what is wrong), and
:func:`check_batch` raises it as a :class:`DataError` in the training loop,
whatever ``num_workers`` is.
"""

import random

import numpy as np
import paddle

from paddleseg.utils.errors import ConfigError, DataError, SegError

__all__ = ['ResumableBatchSampler', 'SafeDataset', 'SeededDataset',
           'RepeatedDataset', 'collate_batch',
           'check_batch', 'build_train_loader']

ERROR_KEY = '__error__'  # a sample or batch that failed: its message
# The index the sampler hands on, with the message in place of the seed,
# when it cannot compose an epoch (it runs in the loader's thread too).
FAILED = -1


class ResumableBatchSampler(paddle.io.Sampler):
    """Infinite sampler of index batches with a resumable position.

    Args:
        num_samples (int): Dataset length.
        batch_size (int): Samples per batch on this rank.
        seed (int): Base seed of the shuffling.
        shuffle (bool): Shuffle each epoch.
        rank (int): This process's rank.
        world_size (int): Number of processes; each epoch's order is cut into
            ``world_size`` interleaved shards.
        drop_last (bool): Drop the incomplete last batch of an epoch.
        epoch_order (callable, optional): ``epoch_order(seed, epoch)`` gives
            the ``num_samples`` indices of an epoch, in order, in place of a
            shuffle (a dataset that composes its epochs, as class-uniform
            sampling does, offers it as its ``epoch_order`` method). It
            must depend on its arguments alone, so every rank, and a resumed
            run, draws the same epoch.

    Yields lists of ``(index, sample_seed)`` pairs.
    """

    def __init__(self, num_samples, batch_size, seed=0, shuffle=True, rank=0,
                 world_size=1, drop_last=True, epoch_order=None):
        super().__init__()
        self.epoch_order = epoch_order
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.start_batch = 0

    def batches_per_epoch(self):
        per_rank = self.num_samples // self.world_size
        if self.drop_last:
            return per_rank // self.batch_size
        return -(-per_rank // self.batch_size)

    def set_position(self, batches_consumed):
        """Start at the batch that follows ``batches_consumed`` batches.

        The position is counted by the consumer (the trainer), not by this
        sampler, because a DataLoader with workers draws batches ahead.
        """
        self.start_batch = int(batches_consumed)

    def _epoch_order(self, epoch):
        if self.epoch_order is not None:
            order = np.asarray(self.epoch_order(self.seed, epoch),
                               dtype=np.int64)
            if order.shape != (self.num_samples, ):
                raise ValueError(
                    'epoch_order gave {} indices for epoch {}; it must give '
                    'one per sample ({}).'.format(order.size, epoch,
                                                  self.num_samples))
        elif self.shuffle:
            rng = np.random.default_rng([self.seed, epoch])
            order = rng.permutation(self.num_samples)
        else:
            order = np.arange(self.num_samples)
        usable = (self.num_samples // self.world_size) * self.world_size
        return order[:usable][self.rank::self.world_size]

    def __iter__(self):
        if self.batches_per_epoch() == 0:
            raise ValueError(
                'The training set has {} samples, fewer than batch_size {} x {} '
                'processes; lower batch_size or add data.'.format(
                    self.num_samples, self.batch_size, self.world_size))
        epoch, start = divmod(self.start_batch, self.batches_per_epoch())
        while True:
            try:
                order = self._epoch_order(epoch)
            except Exception as e:  # this runs in the loader's thread
                yield [(FAILED, 'Composing epoch {} failed ({}: {}).'.format(
                    epoch, type(e).__name__, e))]
                return
            for b in range(start, self.batches_per_epoch()):
                idx = order[b * self.batch_size:(b + 1) * self.batch_size]
                base = (epoch * self.num_samples +
                        b * self.batch_size * self.world_size)
                yield [(int(i), self._sample_seed(base + k))
                       for k, i in enumerate(idx)]
            epoch, start = epoch + 1, 0

    def _sample_seed(self, position):
        seq = np.random.SeedSequence([self.seed, self.rank, position])
        return int(seq.generate_state(1)[0])

    def __len__(self):
        return 2**62  # infinite; len() is required by paddle's DataLoader


class RepeatedDataset(paddle.io.Dataset):
    """A dataset whose file list is repeated ``repeats`` times in every epoch
    (PaddleSeg's ``train.py --repeats``, which multiplies ``file_list``).

    An epoch is then ``repeats`` passes over the samples, shuffled together
    by the sampler; a dataset that composes its own epochs
    (``epoch_order``) gives ``repeats`` of its epochs, one after the other.
    The length changes, so the sampler's positions, and with them a resume,
    stay exact.
    """

    def __init__(self, dataset, repeats):
        super().__init__()
        if int(repeats) < 1:
            raise ConfigError('--repeats must be at least 1, got {}.'.format(
                repeats))
        self.dataset, self.repeats = dataset, int(repeats)
        # A dataset's epoch_order may be None (class-uniform sampling off).
        self.epoch_order = (self._epoch_order if getattr(
            dataset, 'epoch_order', None) is not None else None)

    @classmethod
    def of(cls, dataset, repeats=1):
        """``dataset`` repeated, or itself when ``repeats`` is 1."""
        return dataset if int(repeats) == 1 else cls(dataset, repeats)

    def __len__(self):
        return len(self.dataset) * self.repeats

    def __getitem__(self, index):
        return self.dataset[index % len(self.dataset)]

    @property
    def file_list(self):
        return list(getattr(self.dataset, 'file_list', [])) * self.repeats

    def _epoch_order(self, seed, epoch):
        first = epoch * self.repeats
        return np.concatenate([
            np.asarray(self.dataset.epoch_order(seed, first + r))
            for r in range(self.repeats)])


class SafeDataset(paddle.io.Dataset):
    """Wraps a dataset so that a sample that fails to load comes back as a
    record of the failure (see the module docstring) instead of raising in
    a loader thread or worker."""

    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        try:
            return self.dataset[index]
        except Exception as e:  # never raised in a loader thread or worker
            return _error_batch(_failure(self.dataset, index, e))


class SeededDataset(SafeDataset):
    """Wraps a dataset so that item ``(index, seed)`` reseeds the RNGs first
    (and failures come back as records, as :class:`SafeDataset`)."""

    def __getitem__(self, item):
        index, seed = item
        if index == FAILED:
            return _error_batch(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        return super().__getitem__(index)


def _failure(dataset, index, error):
    """One sentence for a sample that could not be loaded: the dataset's
    own message (it names the file) or, for an unexpected error, the
    sample's files and the error."""
    if isinstance(error, SegError):
        return str(error)
    try:  # a class-uniform dataset resolves indices past its file list
        files = (dataset.files_of(index) if hasattr(dataset, 'files_of')
                 else dataset.file_list[index])
    except Exception:  # noqa: BLE001 - the message must still be made
        files = None
    where = (' and '.join("'{}'".format(p) for p in files if p)
             if files else 'sample {}'.format(index))
    return 'Loading {} failed ({}: {}); fix or remove the file.'.format(
        where, type(error).__name__, error)


def collate_batch(samples):
    """Stack ``img`` and ``label``; keep the other fields as lists. A batch
    holding a failed sample, or whose samples cannot be stacked, becomes
    ``{ERROR_KEY: message}``."""
    for s in samples:
        if ERROR_KEY in s:
            return s
    try:
        out = {
            'img': np.stack([s['img'] for s in samples]).astype('float32'),
        }
        if 'label' in samples[0]:
            out['label'] = np.stack([s['label'] for s in samples]).astype(
                'int64')
    except ValueError as e:
        shapes = sorted({tuple(np.shape(s['img'])) for s in samples})
        return _error_batch(
            'The samples of a batch cannot be stacked ({}; image shapes {}: '
            '{}); the training transforms must give every sample the same '
            'size (e.g. end with RandomPaddingCrop).'.format(
                e, shapes, ', '.join(str(s.get('img_path')) for s in
                                     samples)))
    for key in ('img_path', 'label_path'):
        if key in samples[0]:
            out[key] = [s[key] for s in samples]
    return out


def _error_batch(message):
    """A batch that carries ``message``; Paddle's loader needs at least one
    array in every batch it passes on."""
    return {'img': np.zeros([1], dtype='float32'), ERROR_KEY: message}


def check_batch(batch):
    """``batch``, or the :class:`DataError` its loading met."""
    if ERROR_KEY in batch:
        message = batch[ERROR_KEY]
        if not isinstance(message, str):  # collated by Paddle into a list
            message = message[0]
        raise DataError(message)
    return batch


def build_train_loader(dataset, batch_size, seed, num_workers=0, rank=0,
                       world_size=1):
    """A DataLoader over ``dataset`` with a :class:`ResumableBatchSampler`.

    Raises:
        ConfigError: the dataset cannot fill one batch on every rank.
    """
    if len(dataset) < batch_size * world_size:
        raise ConfigError(
            'batch_size {} x {} process(es) needs at least {} training '
            'samples, but the training set has {}; lower batch_size or add '
            'data.'.format(batch_size, world_size, batch_size * world_size,
                           len(dataset)))
    sampler = ResumableBatchSampler(len(dataset), batch_size, seed=seed,
                                    shuffle=True, rank=rank,
                                    world_size=world_size,
                                    epoch_order=getattr(dataset, 'epoch_order',
                                                        None))
    loader = paddle.io.DataLoader(
        SeededDataset(dataset), batch_sampler=sampler, num_workers=num_workers,
        collate_fn=collate_batch, return_list=True,
        persistent_workers=num_workers > 0)
    return loader, sampler
