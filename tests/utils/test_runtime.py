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


def _cpuinfo(tmp_path, vendor):
    path = tmp_path / 'cpuinfo'
    path.write_text('processor\t: 0\nvendor_id\t: {}\ncpu family\t: 23\n'
                    .format(vendor))
    return str(path)


@pytest.mark.parametrize('vendor,expected', [('AuthenticAMD', '5'),
                                             ('GenuineIntel', None)])
def test_fast_mkl_on_amd_only(tmp_path, monkeypatch, vendor, expected):
    from paddleseg.utils import runtime
    monkeypatch.delenv('MKL_DEBUG_CPU_TYPE', raising=False)
    assert runtime.cpu_vendor(_cpuinfo(tmp_path, vendor)) == vendor
    assert runtime.fast_mkl_on_amd(_cpuinfo(tmp_path, vendor)) == \
        (expected is not None)
    assert os.environ.get('MKL_DEBUG_CPU_TYPE') == expected


def test_fast_mkl_keeps_user_setting_and_unreadable_cpuinfo(tmp_path,
                                                          monkeypatch):
    from paddleseg.utils import runtime
    monkeypatch.setenv('MKL_DEBUG_CPU_TYPE', '2')
    assert not runtime.fast_mkl_on_amd(_cpuinfo(tmp_path, 'AuthenticAMD'))
    assert os.environ['MKL_DEBUG_CPU_TYPE'] == '2'
    monkeypatch.delenv('MKL_DEBUG_CPU_TYPE')
    assert runtime.cpu_vendor(str(tmp_path / 'absent')) is None
    assert not runtime.fast_mkl_on_amd(str(tmp_path / 'absent'))
    assert 'MKL_DEBUG_CPU_TYPE' not in os.environ
