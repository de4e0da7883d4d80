"""Run PaddleSeg 2.8's own trainer (paddleseg.core.train) on a config.

Mirrors PaddleSeg release/2.8 tools/train.py (which the pip wheel does not
ship): Config -> SegBuilder -> show env/cfg -> set_seed -> set_device ->
set_cv2_num_threads -> convert_sync_batchnorm -> paddleseg.core.train.
Defaults here differ from tools/train.py only where a CPU benchmark needs:
--device cpu (tools: gpu), --seed 0 (tools: None). Eval during training only
with --do_eval, as in tools/train.py. --cpu_threads is an addition (default:
leave Paddle's own thread setting alone, as tools/train.py does), and so is
--paddle_profiler (benchmarks/step_profile.py): PaddleSeg 2.8's own
--profiler_options drives paddle.utils.profiler, which Paddle 3 no longer
has, so this replaces the function its loop calls once per iteration
(train_profiler.add_profiler_step, after optimizer.step) with one that steps
paddle.profiler.Profiler, the profiler our trainer's --profiler_options runs.

    benchmarks/paddleseg28/venv/bin/python benchmarks/paddleseg28/train_paddleseg.py \
        --config CONFIG --iters 3 --log_iters 1 --save_dir /tmp/pseg_out \
        --cpu_threads 2
"""
import argparse
import os
import sys

# Never pick up a `paddleseg` from the current directory (this repository's
# own package): use the one installed in PaddleSeg's venv.
sys.path = [p for p in sys.path if p not in ('', os.getcwd())]


def parse_args():
    p = argparse.ArgumentParser(description='PaddleSeg 2.8 training')
    p.add_argument('--config', required=True)
    p.add_argument('--device', default='cpu',
                   choices=['cpu', 'gpu', 'xpu', 'npu', 'mlu'])
    p.add_argument('--save_dir', default='./output')
    p.add_argument('--num_workers', type=int, default=0)
    p.add_argument('--do_eval', action='store_true')
    p.add_argument('--use_vdl', action='store_true')
    p.add_argument('--resume_model', default=None)
    p.add_argument('--iters', type=int, default=None)
    p.add_argument('--batch_size', type=int, default=None)
    p.add_argument('--learning_rate', type=float, default=None)
    p.add_argument('--save_interval', type=int, default=1000)
    p.add_argument('--log_iters', type=int, default=10)
    p.add_argument('--keep_checkpoint_max', type=int, default=5)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--precision', default='fp32', choices=['fp32', 'fp16'])
    p.add_argument('--amp_level', default='O1', choices=['O1', 'O2'])
    p.add_argument('--profiler_options', default=None)
    p.add_argument('--repeats', type=int, default=1)
    p.add_argument('--opts', nargs='+', default=None)
    p.add_argument('--cpu_threads', type=int, default=None,
                   help='If given: paddle.base.core.set_num_threads(N) '
                   '(not in tools/train.py; for matching thread counts).')
    p.add_argument('--paddle_profiler', default=None,
                   metavar='LO,HI,FILE[,timer]',
                   help='Profile the loop\'s steps LO to HI - 1 (counted '
                   'from the first call, after iteration 1) with '
                   'paddle.profiler and write its summary to FILE (with '
                   ',timer: one line per step of its step timer).')
    return p.parse_args()


def install_profiler(spec):
    """Replace PaddleSeg's per-iteration profiler call with a
    paddle.profiler window over its steps LO to HI - 1 (counted from its
    first call, after iteration 1): ``LO,HI,FILE`` writes the summary (CPU,
    operator detail, ms) our trainer's ProfilerHook writes, ``LO,HI,FILE,
    timer`` one line per step with Paddle's step timer, as our hook's
    ``timer_only=true`` does."""
    import contextlib
    import io
    import paddle.profiler as profiler
    from paddleseg.utils import train_profiler
    lo, hi, path, *mode = spec.split(',')
    lo, hi, timer_only = int(lo), int(hi), mode == ['timer']
    state = {'prof': None, 'steps': 0}

    def summary(prof):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            prof.summary(sorted_by=profiler.SortedKeys.CPUTotal,
                         op_detail=True, thread_sep=False, time_unit='ms')
        with open(path, 'w') as f:
            f.write(buf.getvalue())

    def step(_options=None):
        prof = state['prof']
        if state['steps'] == 0:
            state['prof'] = profiler.Profiler(
                targets=[profiler.ProfilerTarget.CPU], scheduler=(lo, hi),
                timer_only=timer_only)
            state['prof'].start()
            if timer_only:  # lines are appended; the summary is written
                open(path, 'w').close()  # whole, at the window's end
        elif prof is not None:
            prof.step()
            if timer_only and lo <= state['steps'] - 1 < hi:
                with open(path, 'a') as f:
                    f.write('step {}: {}\n'.format(
                        state['steps'] - 1, prof.step_info(unit='samples')))
        state['steps'] += 1
        if prof is not None and state['steps'] > hi:
            state['prof'] = None
            prof.stop()
            if not timer_only:
                summary(prof)

    train_profiler.add_profiler_step = step


def main(args):
    import paddle
    from paddleseg.cvlibs import Config, SegBuilder
    from paddleseg.utils import utils
    from paddleseg.core import train

    if args.cpu_threads is not None:
        os.environ['OMP_NUM_THREADS'] = str(args.cpu_threads)
        paddle.base.core.set_num_threads(args.cpu_threads)

    if args.paddle_profiler:
        install_profiler(args.paddle_profiler)

    cfg = Config(args.config, learning_rate=args.learning_rate,
                 iters=args.iters, batch_size=args.batch_size, opts=args.opts)
    builder = SegBuilder(cfg)

    utils.show_env_info()
    utils.show_cfg_info(cfg)
    utils.set_seed(args.seed)
    utils.set_device(args.device)
    utils.set_cv2_num_threads(args.num_workers)

    model = utils.convert_sync_batchnorm(builder.model, args.device)
    train_dataset = builder.train_dataset
    if args.repeats > 1:
        train_dataset.file_list *= args.repeats
    val_dataset = builder.val_dataset if args.do_eval else None

    train(model, train_dataset, val_dataset=val_dataset,
          optimizer=builder.optimizer, save_dir=args.save_dir,
          iters=cfg.iters, batch_size=cfg.batch_size,
          resume_model=args.resume_model, save_interval=args.save_interval,
          log_iters=args.log_iters, num_workers=args.num_workers,
          use_vdl=args.use_vdl, losses=builder.loss,
          keep_checkpoint_max=args.keep_checkpoint_max,
          test_config=cfg.test_config, precision=args.precision,
          amp_level=args.amp_level, profiler_options=args.profiler_options,
          to_static_training=cfg.to_static_training)


if __name__ == '__main__':
    main(parse_args())
