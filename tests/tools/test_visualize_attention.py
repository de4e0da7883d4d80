"""tools/visualize_attention.py: R = 1 weights lie on the pixel's cross and
sum to 1; R = 2 reaches beyond it; PNG panels per point; clear errors."""

import os
import sys

import cv2
import numpy as np
import paddle
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
sys.path.insert(0, os.path.join(ROOT, 'tools'))

from make_demo_data import make_demo_data  # noqa: E402
import visualize_attention  # noqa: E402

@pytest.fixture(scope='module')
def setup(tmp_path_factory, write_model_config):
    base = tmp_path_factory.mktemp('attention')
    make_demo_data(str(base / 'data'), num_train=1, num_val=1, width=128,
                   height=64)
    cfg = write_model_config(base / 'ccnet.yml', base / 'data')
    from paddleseg.cvlibs import Config, SegBuilder
    paddle.seed(0)
    model = SegBuilder(Config(cfg)).model
    model.head.cca.gamma.set_value(paddle.to_tensor([1.0]))
    paddle.save(model.state_dict(), str(base / 'model.pdparams'))
    image = str(next((base / 'data' / 'leftImg8bit' / 'val').rglob('*.png')))
    return base, cfg, image


def run_tool(base, cfg, image, *points):
    visualize_attention.main([
        '--config', cfg, '--model_path', str(base / 'model.pdparams'),
        '--image_path', image, '--points', *points, '--save_dir',
        str(base / 'out')])


def test_maps_and_pictures(setup):
    base, cfg, image = setup
    with pytest.raises(SystemExit) as exit_info:
        from paddleseg.utils import cli
        cli.run(lambda: run_tool(base, cfg, image, '20,10', '100,50'),
                argv=[])
    assert exit_info.value.code == 0
    stem = os.path.splitext(os.path.basename(image))[0]
    for x, y in ((20, 10), (100, 50)):
        saved = np.load(str(base / 'out' / '{}_x{}_y{}.npz'.format(stem, x,
                                                                   y)))
        r1, r2 = saved['r1'], saved['r2']
        assert r1.shape == r2.shape == (8, 16)  # 64x128 at output stride 8
        row, col = y // 8, x // 8
        assert r1.sum() == pytest.approx(1.0, abs=1e-5)
        off_cross = np.ones_like(r1, bool)
        off_cross[row, :] = off_cross[:, col] = False
        assert (r1[off_cross] == 0).all()  # R = 1: only the cross
        assert r2.sum() == pytest.approx(1.0, abs=1e-5)
        assert (r2[off_cross] > 0).all()  # R = 2: the whole image
        panel = cv2.imread(str(base / 'out' / '{}_x{}_y{}.png'.format(
            stem, x, y)))
        assert panel.shape == (64, 3 * 128, 3)


@pytest.mark.parametrize('points, message', [
    (['200,10'], 'outside the 128x64'),
    (['a,b'], 'X,Y integer pairs'),
])
def test_bad_points(setup, points, message):
    from paddleseg.utils.errors import SegError
    base, cfg, image = setup
    with pytest.raises(SegError, match=message):
        run_tool(base, cfg, image, *points)


def test_model_without_attention(setup, tmp_path, write_model_config):
    from paddleseg.utils.errors import SegError
    base, _, image = setup
    cfg = write_model_config(tmp_path / 'fcn.yml', base / 'data', model='FCN')
    with pytest.raises(SegError, match='has no criss-cross attention'):
        run_tool(base, cfg, image, '1,1')
