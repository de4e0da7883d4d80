"""How fine an output the demo data needs: the val mIoU of the ground truth
itself pooled to 1/8 and 1/16 (area-averaged one-hot) and upsampled back
(bilinear, argmax), an upper bound for a model predicting at that output
stride. Uses data/demo (made if missing).

    python benchmarks/demo_resolution_bound.py  # benchmarks/results/demo_resolution_bound.*
"""

import glob
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import ROOT, write_results  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, 'tools'))
from make_demo_data import CLASSES, make_demo_data  # noqa: E402


def bound(labels, stride):
    """Per-class IoU of the pooled-and-upsampled ground truth."""
    inter = np.zeros(len(CLASSES))
    union = np.zeros(len(CLASSES))
    for label in labels:
        h, w = label.shape
        onehot = np.stack([(label == c).astype(np.float32) for c in CLASSES],
                          -1)
        small = cv2.resize(onehot, (w // stride, h // stride),
                           interpolation=cv2.INTER_AREA)
        up = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        pred = np.asarray(CLASSES)[up.argmax(-1)]
        for i, c in enumerate(CLASSES):
            inter[i] += np.sum((pred == c) & (label == c))
            union[i] += np.sum((pred == c) | (label == c))
    return inter / union


def main():
    data = os.path.join(ROOT, 'data', 'demo')
    if not os.path.isdir(os.path.join(data, 'gtFine')):
        make_demo_data(data)
    labels = [cv2.imread(f, cv2.IMREAD_GRAYSCALE) for f in sorted(glob.glob(
        os.path.join(data, 'gtFine', 'val', '*', '*labelTrainIds.png')))]
    payload = {str(s): dict(zip(map(str, CLASSES), bound(labels, s).tolist()))
               for s in (8, 16)}
    md = ('# Demo data: mIoU bound by output stride (val, {} images)\n\n'
          '| output stride | mIoU bound | lowest class |\n|---|---|---|\n'
          .format(len(labels)))
    for s, ious in payload.items():
        low = min(ious, key=ious.get)
        md += '| {} | {:.3f} | trainId {} ({:.2f}) |\n'.format(
            s, np.mean(list(ious.values())), low, ious[low])
    write_results('demo_resolution_bound', payload, md)


if __name__ == '__main__':
    main()
