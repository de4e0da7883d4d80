"""Peak memory of evaluating one full-resolution Cityscapes frame (1024x2048)
with FCN-ResNet18_vd at output stride 8: whole-image inference against the
sliding window (769x769 crops, stride 513), each in a fresh process, with the
time per image. Peak is the process's max RSS minus its RSS after building
the model, so it counts what inference adds.

    python benchmarks/eval_memory.py    # writes benchmarks/results/eval_memory.*
"""

import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import machine, rss_mb, run_child, write_results


def child(mode):
    import paddle
    import paddleseg
    from paddleseg.core.infer import inference
    from paddleseg.cvlibs import manager
    paddle.seed(0)
    backbone = manager.BACKBONES['ResNet18_vd'](output_stride=8)
    model = manager.MODELS['FCN'](num_classes=19, backbone=backbone)
    model.eval()
    x = paddle.randn([1, 3, 1024, 2048])
    base = rss_mb()
    start = time.perf_counter()
    with paddle.no_grad():
        if mode == 'whole':
            logit = inference(model, x)
        else:
            logit = inference(model, x, is_slide=True, crop_size=(769, 769),
                              stride=(513, 513))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({'mode': mode, 'extra_peak_mb': peak - base,
                      'seconds': seconds, 'shape': list(logit.shape)}))


def main():
    whole = run_child(__file__, ['--child', 'whole'])
    slide = run_child(__file__, ['--child', 'slide'])
    ratio = slide['extra_peak_mb'] / whole['extra_peak_mb']
    payload = {'machine': machine(), 'whole': whole, 'slide': slide,
               'memory_ratio_slide_over_whole': ratio}
    md = ('# Evaluation memory, one 1024x2048 image, FCN-ResNet18_vd os8\n\n'
          '| inference | extra peak RSS (MB) | time (s) |\n|---|---|---|\n'
          '| whole image | {:.0f} | {:.2f} |\n'
          '| sliding window 769x769, stride 513 | {:.0f} | {:.2f} |\n\n'
          'Sliding window needs **{:.2f}x** the memory of whole-image '
          'inference.\n').format(whole['extra_peak_mb'], whole['seconds'],
                                 slide['extra_peak_mb'], slide['seconds'],
                                 ratio)
    write_results('eval_memory', payload, md)


if __name__ == '__main__':
    child(sys.argv[2]) if '--child' in sys.argv else main()
