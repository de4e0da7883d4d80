"""tools/run_demo.py's helpers: which model a config trains, and the attention
points it picks (inside a person, a car and the road of the first val image)."""

import os
import sys

import cv2

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
sys.path.insert(0, os.path.join(ROOT, 'tools'))

from make_demo_data import make_demo_data  # noqa: E402
import run_demo  # noqa: E402


def test_model_type_of_the_quick_starts():
    quick = os.path.join(ROOT, 'configs', 'quick_start')
    assert run_demo._model_type(os.path.join(
        quick, 'ccnet_resnet18_demo.yml')) == 'CCNet'
    assert run_demo._model_type(os.path.join(
        quick, 'fcn_resnet18_demo.yml')) == 'FCN'


def test_attention_points_lie_inside_their_classes(tmp_path):
    data = str(tmp_path / 'demo')
    make_demo_data(data, num_train=1, num_val=1)
    image, points = run_demo._attention_points(data)
    assert os.path.isfile(image)
    label = cv2.imread(image.replace('leftImg8bit', 'gtFine', 1).replace(
        '_leftImg8bit.png', '_gtFine_labelTrainIds.png'), cv2.IMREAD_GRAYSCALE)
    present = [c for c in (11, 13, 0) if (label == c).any()]
    assert len(points) == len(present) >= 2
    for cls, point in zip(present, points):
        x, y = (int(v) for v in point.split(','))
        assert label[y, x] == cls
        # Not on the region's edge: its 4-neighbours share the class.
        assert all(label[min(max(y + dy, 0), label.shape[0] - 1),
                         min(max(x + dx, 0), label.shape[1] - 1)] == cls
                   for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)))
