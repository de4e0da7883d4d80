"""CPU threads: every usable core by default, the user's setting respected."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

SCRIPT = ('import os, {first}; import paddleseg; '
          'print(os.environ["OMP_NUM_THREADS"])')


@pytest.mark.parametrize('first', ['os', 'paddle'])
@pytest.mark.parametrize('user_value', [None, '1', '3'])
def test_threads_default_and_user_choice(first, user_value):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop('OMP_NUM_THREADS', None)
    env.pop('PADDLE_TRAINERS_NUM', None)
    if user_value is not None:
        env['OMP_NUM_THREADS'] = user_value
    out = subprocess.run([sys.executable, '-c', SCRIPT.format(first=first)],
                         env=env, capture_output=True, text=True, check=True)
    expected = user_value or str(len(os.sched_getaffinity(0)))
    assert out.stdout.strip() == expected
    if user_value is None:  # Paddle's import warns about values above 1
        assert 'OMP_NUM_THREADS' not in out.stderr
