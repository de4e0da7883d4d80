"""Idempotent patches to the pip wheel of PaddleSeg 2.8.0 so that its trainer
runs on Paddle 3.3 / numpy 2 / Python 3.11 (setup.sh runs it with the venv's
python). Benchmark use only: nothing of the framework imports PaddleSeg.
Each patch is (file, old, new, why). A patch whose `new` text is already there
is skipped; one whose `old` text is missing is an error (wrong version)."""
import os
import sys
import sysconfig

SITE = sysconfig.get_paths()['purelib']
ROOT = os.path.join(SITE, 'paddleseg')

PATCHES = [
    ('models/losses/cross_entropy_loss.py',
     '            coef = paddle.ones_like(label)\n',
     "            coef = paddle.ones_like(label, dtype='float32')\n",
     'Paddle 3 has no int64*float32 type promotion (Paddle 2 cast the right '
     'operand to the left dtype): mask(float32) * coef(int64) raised '
     'InvalidType. Values unchanged (all ones).'),
    ('core/train.py',
     '                avg_loss_list = [l[0] / log_iters for l in avg_loss_list]\n',
     '                avg_loss_list = [l.reshape([-1])[0] / log_iters for l in avg_loss_list]\n',
     'losses are 0-D tensors since Paddle 2.5, so .numpy() is a 0-d array and '
     'l[0] raises IndexError at the first log step.'),
    ('core/train.py',
     """        _ = paddle.flops(
            model, [1, c, h, w],
            custom_ops={paddle.nn.SyncBatchNorm: op_flops_funs.count_syncbn})
""",
     """        try:  # patched: FLOPs report only; Paddle 3.3.1 flops() fails on numpy 2
            _ = paddle.flops(
                model, [1, c, h, w],
                custom_ops={paddle.nn.SyncBatchNorm: op_flops_funs.count_syncbn})
        except TypeError as e:
            logger.warning('FLOPs count skipped: {}'.format(e))
""",
     'after the last iteration train() calls paddle.flops(), whose table does '
     'int() of shape-[1] buffers; numpy 2 raises TypeError there (Paddle 3.3.1 '
     'bug with numpy>=2), crashing the run after training (checkpoint already '
     'saved). Report-only, so the error is caught and logged.'),
    ('utils/metrics.py',
     """    pred_area = paddle.concat(pred_area)
    label_area = paddle.concat(label_area)
    intersect_area = paddle.concat(intersect_area)
""",
     """    pred_area = paddle.stack(pred_area)  # patched: 0-D sums (Paddle>=2.5)
    label_area = paddle.stack(label_area)
    intersect_area = paddle.stack(intersect_area)
""",
     'paddle.sum() returns 0-D tensors since Paddle 2.5 and concat of 0-D '
     'tensors raises InvalidArgument in evaluate(); stack gives the same '
     '[num_classes] tensor the code expects. Eval path only (--do_eval).'),
]


def main():
    if not os.path.isdir(ROOT):
        sys.exit('paddleseg not installed under ' + SITE)
    bad = 0
    for rel, old, new, why in PATCHES:
        path = os.path.join(ROOT, rel)
        with open(path) as f:
            text = f.read()
        if new in text and old not in text:
            print('already patched: ' + rel)
            continue
        if text.count(old) != 1:
            print('CANNOT PATCH %s: expected text found %d times'
                  % (rel, text.count(old)))
            bad += 1
            continue
        with open(path, 'w') as f:
            f.write(text.replace(old, new))
        print('patched: %s  (%s)' % (rel, why.split(':')[0]))
    # drop stale bytecode of patched files
    for rel, *_ in PATCHES:
        d = os.path.join(ROOT, os.path.dirname(rel), '__pycache__')
        stem = os.path.splitext(os.path.basename(rel))[0] + '.'
        if os.path.isdir(d):
            for n in os.listdir(d):
                if n.startswith(stem):
                    os.remove(os.path.join(d, n))
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
