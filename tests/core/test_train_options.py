"""PaddleSeg's training options on the tiny trainer of test_trainer.py: the
moving average (against one computed by hand, and resumed exactly), early
stop, repeats, static-graph training (the eager losses) and the profiler."""

import os
import random
import shutil
import sys

import numpy as np
import paddle
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_trainer import CE, TinyDataset, TinyModel  # noqa: E402

from paddleseg.core import checkpointer, hooks  # noqa: E402
from paddleseg.core.data import RepeatedDataset  # noqa: E402
from paddleseg.core.ema import EMA_FILE, update_average  # noqa: E402
from paddleseg.core.profiler import (SUMMARY_FILE,  # noqa: E402
                                     parse_profiler_options)
from paddleseg.core.trainer import train  # noqa: E402
from paddleseg.utils.errors import CheckpointError, SegError  # noqa: E402
from paddleseg.utils.weights import read_state_file  # noqa: E402


class Recording(CE):
    """Cross entropy that records every value it returns."""

    def __init__(self):
        self.values = []

    def __call__(self, logit, label):
        loss = super().__call__(logit, label)
        self.values.append(float(loss.item()))
        return loss


def _run(save_dir, iters, constant_lr=False, loss=None, save_interval=2,
         **kw):
    paddle.seed(0)
    random.seed(0)
    np.random.seed(0)
    model = TinyModel()
    lr = 0.1 if constant_lr else paddle.optimizer.lr.PolynomialDecay(
        0.1, decay_steps=iters)
    opt = paddle.optimizer.Momentum(lr, momentum=0.9,
                                    parameters=model.parameters())
    trainer = train(model, TinyDataset(), opt,
                    {'types': [loss or CE()], 'coef': [1.0]}, iters=iters,
                    batch_size=2, save_dir=str(save_dir),
                    save_interval=save_interval, log_iters=1, seed=3, **kw)
    return model, trainer


def _weights(model_or_path):
    if isinstance(model_or_path, paddle.nn.Layer):
        return {k: v.numpy().copy()
                for k, v in model_or_path.state_dict().items()}
    return {k: np.asarray(v) for k, v in
            read_state_file(str(model_or_path)).items()}


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# -- the moving average -------------------------------------------------------

def test_update_average_is_paddlesegs_rule_to_the_bit():
    paddle.seed(1)
    average, model = TinyModel(), TinyModel()
    by_hand = _weights(average)
    for step in (1, 2, 3, 1000, 5000):
        for value in model.state_dict().values():
            value.set_value(paddle.randn(value.shape))
        update_average(average, model, step)
        decay = np.float32(min(1 - 1 / (step + 1), 0.999))
        one_minus = np.float32(1.0 - min(1 - 1 / (step + 1), 0.999))
        for k, w in _weights(model).items():
            by_hand[k] = by_hand[k] * decay + one_minus * w
        _assert_same(_weights(average), by_hand)


def test_ema_checkpoint_holds_the_hand_computed_average(tmp_path):
    # With a constant learning rate a run of k iterations ends with the
    # weights an n-iteration run has after k (same seed, same batches), so
    # each step's weights can be taken from shorter runs.
    steps = [_weights(_run(tmp_path / 'w{}'.format(k), k, True)[0])
             for k in (1, 2, 3)]
    paddle.seed(0)
    average = _weights(TinyModel())  # the initial weights (seeded build)
    for step, weights in enumerate(steps, 1):
        decay = min(1 - 1 / (step + 1), 0.999)  # 0.5, 2/3, 0.75
        for k in average:
            average[k] = (average[k] * np.float32(decay) +
                          np.float32(1.0 - decay) * weights[k])
    _, trainer = _run(tmp_path / 'ema', 3, True, use_ema=True,
                      save_interval=3)
    saved = _weights(tmp_path / 'ema' / 'iter_3' / EMA_FILE)
    _assert_same(saved, average)
    _assert_same(_weights(tmp_path / 'ema' / 'iter_3' / 'model.pdparams'),
                 steps[-1])
    assert trainer.checkpoint_files().keys() == {EMA_FILE}


def test_ema_resumes_exactly(tmp_path):
    full, _ = _run(tmp_path / 'full', 8, use_ema=True, save_interval=3)
    _run(tmp_path / 'part', 8, use_ema=True, save_interval=3)
    for name in ('iter_6', 'iter_8'):  # "killed" after iteration 3
        shutil.rmtree(tmp_path / 'part' / name)
    _, trainer = _run(tmp_path / 'part', 8, use_ema=True, save_interval=3,
                      resume_model='auto')
    assert trainer.start_iter == 3
    for fname in ('model.pdparams', EMA_FILE):
        _assert_same(_weights(tmp_path / 'full' / 'iter_8' / fname),
                     _weights(tmp_path / 'part' / 'iter_8' / fname))


def test_resume_without_an_average_starts_it_from_the_weights(tmp_path,
                                                              caplog):
    _run(tmp_path, 4, save_interval=2)
    shutil.rmtree(tmp_path / 'iter_4')
    model, _ = _run(tmp_path, 4, use_ema=True, save_interval=2,
                    resume_model='auto')
    assert 'the moving average starts from the resumed weights' in \
        caplog.text
    assert (tmp_path / 'iter_4' / EMA_FILE).is_file()


class TinyVal(TinyDataset):
    num_classes = 3
    ignore_index = 255

    def __getitem__(self, idx):
        sample = super().__getitem__(idx)
        return dict(sample, trans_info=[])


def test_ema_is_evaluated_and_its_best_kept(tmp_path):
    _, trainer = _run(tmp_path, 4, use_ema=True, save_interval=2,
                      val_dataset=TinyVal(2), do_eval=True)
    ema = [h for h in trainer.hooks if type(h).__name__ == 'EMAHook'][0]
    assert ema.metrics_iter == 4 and 0 <= ema.metrics['mIoU'] <= 1
    state = trainer.state_dict()
    assert {'ema_best_miou', 'ema_best_iter'} <= set(state)
    assert (tmp_path / 'ema_best_model' / EMA_FILE).is_file()
    assert (tmp_path / 'ema_best_model' / 'metrics.json').is_file()
    assert state['ema_best_iter'] in (2, 4)


# -- early stop ---------------------------------------------------------------

def _scripted(monkeypatch, scores):
    """The evaluations answer the mIoUs ``scores``, in order."""
    answers = iter(scores)
    monkeypatch.setattr(hooks, 'evaluate',
                        lambda model, dataset, **kw: {'mIoU': next(answers),
                                                      'Acc': 0.0})


def test_early_stop_counts_evaluations_without_a_better_miou(tmp_path,
                                                             monkeypatch,
                                                             caplog):
    # Best 0.6 at 4; 0.55 at 6 and an equal 0.6 at 8 are two without a
    # better one: stop at 8 of 20.
    _scripted(monkeypatch, [0.5, 0.6, 0.55, 0.6, 0.9])
    _, trainer = _run(tmp_path / 'a', 20, val_dataset=TinyVal(2),
                      do_eval=True, early_stop_intervals=2)
    assert trainer.iter == 8
    assert 'Early stop at iteration 8: 2 evaluation(s) in a row without a ' \
        'better mIoU than 0.6000 (iteration 4)' in caplog.text
    assert (tmp_path / 'a' / 'iter_8').is_dir()
    assert checkpointer.read_state(str(tmp_path / 'a' / 'iter_8'))[
        'early_stop_count'] == 2
    # Resumed after iteration 6 it stops where the uninterrupted run did.
    shutil.rmtree(tmp_path / 'a' / 'iter_8')
    _scripted(monkeypatch, [0.6])
    _, again = _run(tmp_path / 'a', 20, val_dataset=TinyVal(2),
                    do_eval=True, early_stop_intervals=2,
                    resume_model='auto')
    assert again.start_iter == 6 and again.iter == 8
    # Resumed from the stopped checkpoint it stops at once.
    _, done = _run(tmp_path / 'a', 20, val_dataset=TinyVal(2),
                   do_eval=True, early_stop_intervals=2,
                   resume_model='auto')
    assert done.start_iter == done.iter == 8


# -- repeats ------------------------------------------------------------------

def test_repeated_dataset_and_epoch_order():
    class Composed(TinyDataset):
        def epoch_order(self, seed, epoch):
            return np.roll(np.arange(self.n), epoch)

    base = Composed(3)
    rep = RepeatedDataset.of(base, 2)
    assert len(rep) == 6 and RepeatedDataset.of(base, 1) is base
    random.seed(1), np.random.seed(1)
    fourth = rep[4]['img']
    random.seed(1), np.random.seed(1)
    np.testing.assert_array_equal(fourth, base[1]['img'])
    # Epoch e of the repeated set is epochs 2e and 2e + 1 of the dataset
    # (rolled by 2 and by 3).
    np.testing.assert_array_equal(rep.epoch_order(0, 1),
                                  [1, 2, 0, 0, 1, 2])
    assert RepeatedDataset(TinyDataset(3), 2).epoch_order is None


def test_repeats_resume_exactly_and_are_part_of_the_run(tmp_path):
    full, trainer = _run(tmp_path / 'full', 8, repeats=2, save_interval=3)
    assert trainer.batches_per_epoch == 10  # 2 x 10 samples, batch 2
    _run(tmp_path / 'part', 8, repeats=2, save_interval=3)
    for name in ('iter_6', 'iter_8'):
        shutil.rmtree(tmp_path / 'part' / name)
    resumed, _ = _run(tmp_path / 'part', 8, repeats=2, save_interval=3,
                      resume_model='auto')
    _assert_same(_weights(full), _weights(resumed))
    once, _ = _run(tmp_path / 'once', 8, save_interval=3)
    assert not np.array_equal(_weights(once)['conv.weight'],
                              _weights(full)['conv.weight'])
    with pytest.raises(CheckpointError, match='repeats 2 -> 3'):
        _run(tmp_path / 'part', 10, repeats=3, save_interval=3,
             resume_model='auto')


# -- static-graph training ------------------------------------------------------

def test_static_training_gives_the_eager_losses(tmp_path):
    eager, static = Recording(), Recording()
    a, _ = _run(tmp_path / 'eager', 6, loss=eager)
    b, trainer = _run(tmp_path / 'static', 6, loss=static,
                      to_static_training=True)
    assert len(eager.values) == len(static.values) == 6
    np.testing.assert_allclose(static.values, eager.values, rtol=1e-5)
    wa, wb = _weights(a), _weights(b)
    for k in wa:
        np.testing.assert_allclose(wb[k], wa[k], rtol=1e-4, atol=1e-6,
                                   err_msg=k)
    assert sorted(wb) == sorted(wa)  # the checkpoint keys are unchanged


# -- the profiler -------------------------------------------------------------

def test_profiler_writes_the_window_summary_and_stops(tmp_path, caplog):
    _, trainer = _run(tmp_path / 'a', 8, save_interval=4,
                      profiler_options='batch_range=[2,4]')
    assert trainer.iter == 4
    assert 'Profiling window [2, 4) done' in caplog.text
    summary = (tmp_path / 'a' / SUMMARY_FILE).read_text()
    assert 'Operator' in summary and 'conv2d' in summary.lower()
    _, trainer = _run(tmp_path / 'b', 6, save_interval=6, profiler_options=(
        'batch_range=[1, 3]; exit_on_finished=false; timer_only=true'))
    assert trainer.iter == 6
    lines = (tmp_path / 'b' / SUMMARY_FILE).read_text().splitlines()
    assert [l.split(':')[0] for l in lines] == ['step 1', 'step 2']
    assert all('ips' in l for l in lines)


@pytest.mark.parametrize('text, words', [
    ('batch_range=[5,2]', 'batch_range must be [first,last]'),
    ('batch_range', 'key=value pairs'),
    ('speed=fast', "got 'speed=fast'"),
    ('state=TPU', 'state must be one of CPU/GPU/All'),
])
def test_profiler_options_are_checked(text, words):
    with pytest.raises(SegError, match=words.replace('[', r'\[')):
        parse_profiler_options(text)
    options = parse_profiler_options('batch_range=[3,9];sorted_key=ave')
    assert options['batch_range'] == [3, 9] and options['exit_on_finished']
