"""Paddle's profiler around a window of training steps
(``train.py --profiler_options``).

The options are PaddleSeg's string (``paddleseg/utils/train_profiler.py``),
``key=value`` pairs separated by ``;``::

    --profiler_options "batch_range=[10,20];exit_on_finished=false"

* ``batch_range=[a,b]``: profile steps ``a`` to ``b - 1``, counted from 0
  at the first step of this process (default ``[10,20]``);
* ``state=CPU|GPU|All``: what to trace (default All: the CPU, and the GPU
  when there is one);
* ``sorted_key=total|ave|max|min``: the order of the operator tables
  (``calls`` is taken as ``total``: Paddle 3 cannot sort by calls);
* ``timer_only=true``: only step times and throughput, no operator tables
  (default false here; PaddleSeg's default is true, which prints nothing
  the training log does not already show);
* ``profile_path=DIR``: where the Chrome trace goes (default
  ``save_dir/profiler_log``);
* ``exit_on_finished=true|false``: end training after the window (default
  true, as PaddleSeg, which exits the process; here training stops as an
  early stop does, the checkpoints already written intact);
* ``tracer_option``: accepted, no effect (as in PaddleSeg 2.8).

When the window ends (or training ends inside it), rank 0 writes the
summary to ``save_dir/profiler_summary.txt`` and logs where it is.
"""

import contextlib
import io
import os

import paddle
import paddle.profiler as profiler

from paddleseg.utils import logger
from paddleseg.utils.errors import SegError
from .hook_base import HookBase

__all__ = ['ProfilerHook', 'parse_profiler_options', 'SUMMARY_FILE']

SUMMARY_FILE = 'profiler_summary.txt'
_DEFAULTS = {'batch_range': [10, 20], 'state': 'All', 'sorted_key': 'total',
             'tracer_option': 'Default', 'profile_path': None,
             'exit_on_finished': True, 'timer_only': False}
_SORT = {'total': 'Total', 'calls': 'Total', 'ave': 'Avg', 'max': 'Max',
         'min': 'Min'}


def _flag(text):
    return text.lower() in ('yes', 'true', 't', '1')


def _range(text):
    try:
        lo, hi = (int(v) for v in text.strip('[]').split(','))
    except ValueError:
        lo = hi = -1
    if lo < 0 or hi <= lo:
        raise SegError('--profiler_options batch_range must be [first,last] '
                       'with 0 <= first < last, got {!r}.'.format(text))
    return [lo, hi]


def parse_profiler_options(text):
    """PaddleSeg's option string as a dict (defaults filled in).

    Raises:
        SegError: a pair that is not ``key=value``, an unknown key or a
            value out of range.
    """
    options = dict(_DEFAULTS)
    for pair in filter(None, text.replace(' ', '').split(';')):
        key, sep, value = pair.partition('=')
        if not sep or key not in options:
            raise SegError(
                '--profiler_options takes key=value pairs separated by ";" '
                'with the keys {}, got {!r}.'.format(', '.join(_DEFAULTS),
                                                    pair))
        if key == 'batch_range':
            options[key] = _range(value)
        elif key in ('exit_on_finished', 'timer_only'):
            options[key] = _flag(value)
        else:
            options[key] = value
    choices = {'state': ('CPU', 'GPU', 'All'), 'sorted_key': tuple(_SORT)}
    for key, allowed in choices.items():
        if options[key] not in allowed:
            raise SegError('--profiler_options {} must be one of {}, got '
                           '{!r}.'.format(key, '/'.join(allowed),
                                          options[key]))
    if options['state'] == 'GPU' and not paddle.is_compiled_with_cuda():
        raise SegError('--profiler_options state=GPU needs a Paddle build '
                       'with CUDA; use state=CPU.')
    return options


class ProfilerHook(HookBase):
    """Runs ``paddle.profiler.Profiler`` over a window of steps.

    Args:
        options (str): PaddleSeg's option string (see the module docstring).
        save_dir (str): Where the summary (and by default the trace) go.
        is_writer (bool): Whether this rank writes the summary.
    """

    def __init__(self, options, save_dir, is_writer=True):
        self.options = parse_profiler_options(options)
        self.save_dir = save_dir
        self.is_writer = is_writer
        self.lo, self.hi = self.options['batch_range']
        self._prof, self._steps, self._timer_lines = None, 0, []

    def _targets(self):
        state = self.options['state']
        targets = []
        if state in ('CPU', 'All'):
            targets.append(profiler.ProfilerTarget.CPU)
        if state == 'GPU' or (state == 'All' and
                              paddle.is_compiled_with_cuda()):
            targets.append(profiler.ProfilerTarget.GPU)
        return targets

    def before_train(self):
        trace = None
        if not self.options['timer_only'] and self.is_writer:
            trace = profiler.export_chrome_tracing(
                self.options['profile_path'] or
                os.path.join(self.save_dir, 'profiler_log'))
        self._prof = profiler.Profiler(
            targets=self._targets(), scheduler=(self.lo, self.hi),
            on_trace_ready=trace, timer_only=self.options['timer_only'])
        self._prof.start()

    def after_step(self):
        if self._prof is None:
            return
        self._prof.step(num_samples=self.trainer.batch_size)
        if self.options['timer_only'] and self.lo <= self._steps < self.hi:
            self._timer_lines.append('step {}: {}'.format(
                self._steps, self._prof.step_info(unit='samples')))
        self._steps += 1
        if self._steps >= self.hi:
            self._finish()
            if self.options['exit_on_finished']:
                self.trainer.request_stop(
                    'Profiling window [{}, {}) done; training stops there '
                    '(exit_on_finished, as in PaddleSeg; add '
                    'exit_on_finished=false to --profiler_options to go '
                    'on).'.format(self.lo, self.hi))

    def after_train(self):
        if self._prof is not None:
            self._finish()

    def _finish(self):
        prof, self._prof = self._prof, None
        prof.stop()
        if self._steps <= self.lo:
            logger.warning('Training ended before the profiling window [%d, '
                           '%d) began; no profile was taken.', self.lo,
                           self.hi)
            return
        if self.options['timer_only']:
            text = '\n'.join(self._timer_lines) + '\n'
        else:
            sort = _SORT[self.options['sorted_key']]
            device = 'GPU' if self.options['state'] == 'GPU' else 'CPU'
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                prof.summary(sorted_by=getattr(profiler.SortedKeys,
                                               device + sort),
                             op_detail=True, thread_sep=False,
                             time_unit='ms')
            text = buf.getvalue()
        if self.is_writer:
            os.makedirs(self.save_dir, exist_ok=True)
            path = os.path.join(self.save_dir, SUMMARY_FILE)
            with open(path, 'w') as f:
                f.write(text)
            logger.info('Profile of steps [%d, %d) written to %s.', self.lo,
                        min(self.hi, self._steps), path)
