"""Many processes on many machines, played on one: two
``paddle.distributed.launch`` commands with ``--nnodes 2`` and one process
each (CPU, gloo). The job trains, checkpoints once and resumes; a rank that
dies (killed, or failing before it joined) ends the whole job within seconds
instead of leaving the others waiting forever (PaddleSeg#3499)."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from script_helpers import (make_tiny_data, processes_naming,  # noqa: E402
                            write_train_config)


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _launch(port, log_dir, *args, env=None):
    """One node's launcher (one process) of a 2-node job."""
    cmd = [sys.executable, '-m', 'paddle.distributed.launch', '--nnodes',
           '2', '--master', '127.0.0.1:{}'.format(port), '--nproc_per_node',
           '1', '--log_dir', str(log_dir), 'train.py'] + list(args)
    return subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ, **(env or {})),
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _logs(*dirs):
    return ''.join(p.read_text(errors='replace') for d in dirs
                   for p in d.glob('workerlog.*') if p.is_file())


def _wait_all(procs, timeout):
    deadline = time.time() + timeout
    for proc in procs:
        try:
            proc.wait(max(1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise AssertionError('the job did not end within {} s'.format(
                timeout))
    return [p.returncode for p in procs]


@pytest.fixture(scope='module')
def job(tmp_path_factory):
    base = tmp_path_factory.mktemp('nodes')
    data = make_tiny_data(base)
    yield base, data
    for pid in processes_naming(base):  # nothing outlives a failed test
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


@pytest.mark.timeout(300)
def test_two_nodes_train_checkpoint_once_and_resume(job):
    base, data = job
    cfg = write_train_config(base / 'c.yml', iters=4, data=data)
    out = base / 'out'
    for iters, extra in ((4, []), (6, ['--resume_model', 'auto'])):
        port = _free_port()
        logs = [base / 'log{}_{}'.format(iters, n) for n in (0, 1)]
        args = ['--config', cfg, '--save_dir', str(out), '--iters',
                str(iters), '--save_interval', '2'] + extra
        codes = _wait_all([_launch(port, logs[0], *args),
                           _launch(port, logs[1], *args)], 240)
        assert codes == [0, 0], _logs(*logs)[-4000:]
    assert sorted(p.name for p in out.glob('iter_*')) == [
        'iter_2', 'iter_4', 'iter_6']
    said = _logs(base / 'log6_0', base / 'log6_1')  # rank 0 logs info
    assert said.count('Resumed from') == 1 and 'at iteration 4' in said
    assert said.count('Saved checkpoint') == 1  # iter_6, by rank 0 only


@pytest.mark.timeout(300)
def test_a_killed_rank_ends_the_job_within_seconds(job):
    base, data = job
    cfg = write_train_config(base / 'long.yml', iters=2000, data=data)
    port = _free_port()
    logs = [base / 'klog0', base / 'klog1']
    args = ['--config', cfg, '--save_dir', str(base / 'kout'),
            '--log_iters', '1']
    procs = [_launch(port, logs[0], *args), _launch(port, logs[1], *args)]
    deadline = time.time() + 200
    while '[TRAIN]' not in _logs(*logs) and time.time() < deadline:
        time.sleep(0.2)
    assert '[TRAIN]' in _logs(*logs), 'the job never started training'
    worker = next(int(p) for p in os.listdir('/proc') if p.isdigit() and
                  _is_worker(int(p), cfg))
    os.kill(worker, signal.SIGKILL)
    killed_at = time.time()
    codes = _wait_all(procs, 60)
    assert all(code != 0 for code in codes), codes
    assert time.time() - killed_at < 60


def _is_worker(pid, cfg):
    """A training process (not a launcher) of the job using ``cfg``."""
    try:
        with open('/proc/{}/cmdline'.format(pid), 'rb') as f:
            args = f.read().split(b'\0')
    except OSError:
        return False
    return cfg.encode() in args and b'paddle.distributed.launch' not in args


@pytest.mark.timeout(300)
def test_a_rank_that_never_joins_ends_the_others_with_a_message(job):
    base, data = job
    cfg = write_train_config(base / 'j.yml', iters=4, data=data)
    port = _free_port()
    logs = [base / 'jlog0', base / 'jlog1']
    env = {'PADDLESEG_DIST_JOIN_TIMEOUT': '10'}
    good = _launch(port, logs[0], '--config', cfg, '--save_dir',
                   str(base / 'jout'), env=env)
    bad = _launch(port, logs[1], '--config', cfg, '--save_dir',
                  str(base / 'jout'), '--no_such_flag', env=env)
    start = time.time()
    codes = _wait_all([good, bad], 120)
    assert all(code != 0 for code in codes), codes
    assert time.time() - start < 90
    said = _logs(*logs)
    assert 'did not all join the run within 10 s' in said, said[-3000:]
    assert 'PADDLESEG_DIST_JOIN_TIMEOUT' in said
