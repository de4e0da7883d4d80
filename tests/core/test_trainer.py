"""Trainer: checkpoints (atomic, keep-max, resume from state), data order,
non-finite loss, loss/output alignment. Uses a tiny model and dataset."""

import os
import random

import numpy as np
import paddle
import pytest

from paddleseg.core import checkpointer
from paddleseg.core.data import ResumableBatchSampler
from paddleseg.core.trainer import (TrainingError, compute_losses,
                                    gradients_finite, train)
from paddleseg.utils.errors import CheckpointError, ConfigError

NUM_CLASSES = 3


class TinyDataset(paddle.io.Dataset):
    """Random-looking but index-determined images; random 'augmentation'
    drawn from the global RNGs (as real transforms do)."""

    def __init__(self, n=10):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, idx):
        rng = np.random.RandomState(idx)
        img = rng.rand(3, 8, 8).astype('float32')
        label = (img[0] * NUM_CLASSES).astype('int64').clip(0, 2)
        label[0, 0] = 255
        if random.random() < 0.5:  # a "flip" from python's RNG
            img, label = img[:, :, ::-1].copy(), label[:, ::-1].copy()
        img += np.random.rand(1).astype('float32') * 0.1  # numpy's RNG
        return {'img': img, 'label': label}


class TinyModel(paddle.nn.Layer):

    def __init__(self):
        super().__init__()
        self.conv = paddle.nn.Conv2D(3, 8, 3, padding=1)
        self.bn = paddle.nn.BatchNorm2D(8)
        self.drop = paddle.nn.Dropout(0.3)  # uses paddle's RNG
        self.cls = paddle.nn.Conv2D(8, NUM_CLASSES, 1)

    def forward(self, x):
        return [self.cls(self.drop(paddle.nn.functional.relu(self.bn(
            self.conv(x)))))]


class CE:
    ignore_index = 255

    def __call__(self, logit, label):
        return paddle.nn.functional.cross_entropy(
            logit, label, axis=1, ignore_index=255)


def _run(save_dir, iters, resume=None, save_interval=2, keep=5, lr=0.1,
         loss=None):
    paddle.seed(0)
    random.seed(0)
    np.random.seed(0)
    model = TinyModel()
    sched = paddle.optimizer.lr.PolynomialDecay(lr, decay_steps=iters)
    opt = paddle.optimizer.Momentum(sched, momentum=0.9,
                                    parameters=model.parameters())
    losses = {'types': [loss or CE()], 'coef': [1.0]}
    trainer = train(model, TinyDataset(), opt, losses, iters=iters,
                    batch_size=2, save_dir=str(save_dir),
                    resume_model=resume, save_interval=save_interval,
                    log_iters=1, keep_checkpoint_max=keep, seed=3)
    return model, trainer


def _weights(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def test_resume_gives_same_weights_as_uninterrupted(tmp_path):
    full, _ = _run(tmp_path / 'full', iters=8)
    _run(tmp_path / 'part', iters=8, save_interval=3)  # writes iter_3, iter_6
    # "Kill" after iteration 3: drop the later checkpoints and resume.
    import shutil
    shutil.rmtree(tmp_path / 'part' / 'iter_6')
    shutil.rmtree(tmp_path / 'part' / 'iter_8')
    resumed, trainer = _run(tmp_path / 'part', iters=8, resume='auto',
                            save_interval=3)
    assert trainer.start_iter == 3 and trainer.iter == 8
    a, b = _weights(full), _weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_iteration_comes_from_state_not_folder_name(tmp_path):
    _run(tmp_path, iters=4, save_interval=2)
    os.rename(tmp_path / 'iter_2', tmp_path / 'renamed')
    _, trainer = _run(tmp_path, iters=4, resume=str(tmp_path / 'renamed'))
    assert trainer.start_iter == 2


def test_keep_checkpoint_max(tmp_path):
    _run(tmp_path, iters=8, save_interval=1, keep=2)
    assert sorted(p for p in os.listdir(tmp_path) if p.startswith('iter')) \
        == ['iter_7', 'iter_8']


def test_crash_while_saving_keeps_previous_checkpoint(tmp_path, monkeypatch):
    model, trainer = _run(tmp_path, iters=2, save_interval=2)
    before = _weights(model)
    real_save = paddle.save
    calls = []

    def failing_save(obj, path, *a, **kw):
        calls.append(path)
        real_save(obj, path, *a, **kw)
        if len(calls) == 2:  # after model.pdparams, during model.pdopt
            raise OSError('disk full')

    monkeypatch.setattr(paddle, 'save', failing_save)
    with pytest.raises(OSError):
        checkpointer.save_checkpoint(str(tmp_path), 'iter_2', model,
                                     trainer.optimizer, trainer.state_dict())
    monkeypatch.undo()
    # The complete earlier folder is still there, nothing half-written
    # is taken for a checkpoint, and its weights are intact.
    assert checkpointer.latest_checkpoint(str(tmp_path)).endswith('iter_2')
    loaded = paddle.load(str(tmp_path / 'iter_2' / 'model.pdparams'))
    for k, v in before.items():
        np.testing.assert_array_equal(loaded[k].numpy(), v)
    assert not [p for p in os.listdir(tmp_path / 'iter_2')
                if p.endswith('.tmp')]


def test_auto_resume_skips_incomplete_folders(tmp_path):
    _run(tmp_path, iters=2, save_interval=2)
    os.makedirs(tmp_path / 'iter_9')  # no state file: ignored
    os.makedirs(tmp_path / 'iter_5.tmp')
    assert checkpointer.latest_checkpoint(str(tmp_path)).endswith('iter_2')


def test_resume_errors_name_the_path(tmp_path):
    with pytest.raises(CheckpointError, match='does not exist'):
        _run(tmp_path, iters=2, resume=str(tmp_path / 'nope'))
    os.makedirs(tmp_path / 'empty')
    with pytest.raises(CheckpointError, match='has no train_state.json'):
        _run(tmp_path, iters=2, resume=str(tmp_path / 'empty'))


class NaNAfter(CE):

    def __init__(self, n):
        self.calls, self.n = 0, n

    def __call__(self, logit, label):
        self.calls += 1
        loss = super().__call__(logit, label)
        return loss * float('nan') if self.calls > self.n else loss


def test_non_finite_loss_stops_and_keeps_last_checkpoint(tmp_path):
    with pytest.raises(TrainingError) as e:
        _run(tmp_path, iters=6, save_interval=2, loss=NaNAfter(3))
    assert 'became nan at iteration 4' in str(e.value)
    assert checkpointer.latest_checkpoint(str(tmp_path)).endswith('iter_2')


def test_gradients_finite_is_exact():
    grads = [paddle.ones([3, 4]), paddle.zeros([5])]
    assert gradients_finite(grads) and gradients_finite([])
    for bad in (float('nan'), float('inf'), -float('inf')):
        broken = paddle.ones([3, 4])
        broken[1, 2] = bad
        assert not gradients_finite([grads[1], broken])
    # Finite but summing beyond float32's range: the element-wise test
    # behind the fast sum says finite.
    huge = paddle.full([4], 3e38)
    assert not bool(paddle.isfinite(huge.sum()).item())
    assert gradients_finite([huge, -huge[:1]])
    # +inf and -inf cancel to nan in a sum, never to a finite value.
    assert not gradients_finite([paddle.to_tensor([float('inf'),
                                                   -float('inf')])])


def test_a_non_finite_gradient_stops_training(tmp_path):
    class NaNGradient(paddle.autograd.PyLayer):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad * float('nan')

    class Poisoned(CE):
        def __call__(self, logit, label):
            return super().__call__(NaNGradient.apply(logit), label)

    with pytest.raises(TrainingError, match='A gradient became non-finite '
                       'at iteration 1 '):
        _run(tmp_path, iters=2, loss=Poisoned())


def test_losses_must_match_outputs():
    logit = paddle.zeros([1, 3, 2, 2])
    label = paddle.zeros([1, 2, 2], dtype='int64')
    with pytest.raises(ConfigError, match='returns 2 outputs .* has 1'):
        compute_losses([logit, logit], label, {'types': [CE()], 'coef': [1]})
    out = compute_losses([logit, logit], label,
                         {'types': [CE(), CE()], 'coef': [1.0, 0.4]})
    np.testing.assert_allclose([o.item() for o in out],
                               [np.log(3), 0.4 * np.log(3)], rtol=1e-6)


def test_sampler_positions_and_shards():
    s = ResumableBatchSampler(10, 2, seed=1)
    it = iter(s)
    first = [next(it) for _ in range(7)]  # crosses an epoch (5 per epoch)
    s2 = ResumableBatchSampler(10, 2, seed=1)
    s2.set_position(4)
    it2 = iter(s2)
    assert [next(it2) for _ in range(3)] == first[4:]
    epoch0 = sorted(i for b in first[:5] for i, _ in b)
    assert epoch0 == list(range(10))
    r0 = ResumableBatchSampler(10, 2, seed=1, rank=0, world_size=2)
    r1 = ResumableBatchSampler(10, 2, seed=1, rank=1, world_size=2)
    a, b = iter(r0), iter(r1)
    got0 = [i for _ in range(2) for i, _ in next(a)]
    got1 = [i for _ in range(2) for i, _ in next(b)]
    # 5 samples per rank -> 2 full batches each, the two shards disjoint.
    assert len(set(got0)) == len(set(got1)) == 4
    assert not set(got0) & set(got1)


def test_hooks_own_their_state_in_one_flat_record(tmp_path):
    _, trainer = _run(tmp_path, iters=4, save_interval=2)
    state = trainer.state_dict()
    # The keys train_state has always had, and the run it records; the
    # scheduler's state comes from the LR hook, the best mIoU from the
    # checkpoint hook.
    assert sorted(state) == ['best_iter', 'best_miou', 'iter', 'precision',
                             'run', 'scheduler']
    assert state['run']['batch_size'] == 2 and state['run']['world_size'] == 1
    assert state['run']['model']['conv.weight'] == [8, 3, 3, 3]
    owners = {type(h).__name__: sorted(h.state_dict()) for h in trainer.hooks}
    assert owners['LRSchedulerHook'] == ['scheduler']
    assert owners['CheckpointHook'] == ['best_iter', 'best_miou']
    saved = checkpointer.read_state(str(tmp_path / 'iter_4'))
    assert saved['iter'] == 4 and saved['scheduler'] == state['scheduler']


class ReversedEpochs(TinyDataset):
    """A dataset that composes its own epochs (as class-uniform sampling
    does): epoch e is the indices rotated by e, then reversed."""

    def epoch_order(self, seed, epoch):
        order = np.roll(np.arange(self.n), epoch + seed)
        return order[::-1]


def test_sampler_asks_the_dataset_for_its_epoch_order():
    from paddleseg.core.data import build_train_loader
    dataset = ReversedEpochs(n=6)
    _, sampler = build_train_loader(dataset, batch_size=2, seed=1)
    it = iter(sampler)
    batches = [[i for i, _ in next(it)] for _ in range(6)]  # two epochs
    assert batches[:3] == [[4, 3], [2, 1], [0, 5]]
    assert batches[3:] == [[3, 2], [1, 0], [5, 4]]
    # Resuming at batch 4 continues the dataset's order exactly.
    sampler.set_position(4)
    it = iter(sampler)
    assert [[i for i, _ in next(it)] for _ in range(2)] == batches[4:]


def test_epoch_order_of_the_wrong_length_is_refused():
    from paddleseg.core.data import FAILED
    s = ResumableBatchSampler(4, 2, epoch_order=lambda seed, epoch: [0, 1])
    # The sampler runs in the loader's thread: it hands the failure on.
    (index, message), = next(iter(s))
    assert index == FAILED and 'gave 2 indices for epoch 0' in message


class BadEpochs(TinyDataset):

    def epoch_order(self, seed, epoch):
        raise RuntimeError('no epoch {}'.format(epoch))


@pytest.mark.timeout(120)
def test_a_failing_epoch_order_ends_training_instead_of_hanging(tmp_path):
    from paddleseg.utils.errors import DataError
    paddle.seed(0)
    model = TinyModel()
    opt = paddle.optimizer.SGD(0.1, parameters=model.parameters())
    with pytest.raises(DataError, match='Composing epoch 0 failed .*no '
                       'epoch 0'):
        train(model, BadEpochs(), opt, {'types': [CE()], 'coef': [1.0]},
              iters=2, batch_size=2, save_dir=str(tmp_path))


def test_constant_learning_rate_needs_no_scheduler(tmp_path):
    paddle.seed(0)
    model = TinyModel()
    opt = paddle.optimizer.SGD(0.1, parameters=model.parameters())
    trainer = train(model, TinyDataset(), opt,
                    {'types': [CE()], 'coef': [1.0]}, iters=2, batch_size=2,
                    save_dir=str(tmp_path), save_interval=2, log_iters=1)
    assert trainer.iter == 2
    assert 'LRSchedulerHook' not in [type(h).__name__ for h in trainer.hooks]
