"""evaluate() and predict() on tiny fake datasets, models and image files,
plus the palette helpers they write with."""

import json
import logging
import math
import re

import cv2
import numpy as np
import paddle
import pytest
from PIL import Image

from paddleseg.core import val as val_module
from paddleseg.core.predict import get_image_list, predict
from paddleseg.core.val import evaluate
from paddleseg.transforms import Compose
from paddleseg.transforms.transforms import Padding
from paddleseg.utils.errors import ConfigError, DataError, SegError
from paddleseg.utils.metrics import metrics_from_confusion
from paddleseg.utils.visualize import (get_color_map_list, overlay,
                                       save_palette_png)


class Identity(paddle.nn.Layer):
    """Logits = the image: the prediction is the argmax over its channels."""

    def __init__(self):
        super().__init__()
        self.scale = self.create_parameter([1], default_initializer=(
            paddle.nn.initializer.Constant(1.0)))

    def forward(self, x):
        return [x * self.scale]


def one_hot_image(ids, classes=3):
    """CHW float image whose channel argmax is ``ids``."""
    return np.eye(classes, dtype=np.float32)[ids].transpose(2, 0, 1)


class FakeDataset:
    """Two val samples; the second is padded by its transforms."""

    num_classes = 3
    ignore_index = 255
    CLASS_NAMES = ('road', 'car', 'sky')

    def __init__(self):
        pred0 = np.array([[0, 1], [1, 2]])
        label0 = np.array([[0, 1], [2, 255]])
        pred1 = np.array([[2, 2, 0], [0, 0, 0]])  # right column is padding
        label1 = np.array([[2, 0], [0, 0]])
        self.samples = [
            {'img': one_hot_image(pred0), 'label': label0, 'trans_info': [],
             'img_path': 'a.png'},
            {'img': one_hot_image(pred1), 'label': label1,
             'trans_info': [('padding', (2, 2))], 'img_path': 'b.png'},
        ]
        # (label, pred): (0,0) (1,1) (2,1) | (2,2) (0,2) (0,0) (0,0)
        self.conf = np.array([[3, 0, 1], [0, 1, 0], [0, 1, 1]])

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        return dict(self.samples[i])


def last_line(text):
    return text.strip().splitlines()[-1]


def test_evaluate_metrics_json_and_last_line(tmp_path, capsys):
    model = Identity()
    model.train()
    metrics = evaluate(model, FakeDataset(), save_dir=str(tmp_path / 'ev'))
    expected = metrics_from_confusion(FakeDataset().conf)
    assert metrics['mIoU'] == pytest.approx((3 / 4 + 1 / 2 + 1 / 3) / 3)
    for key in ('mIoU', 'Acc', 'Kappa', 'Dice'):
        assert metrics[key] == pytest.approx(expected[key])
    np.testing.assert_allclose(metrics['class_iou'], expected['class_iou'])
    assert model.training, 'evaluate must restore the training flag'
    line = last_line(capsys.readouterr().out)
    assert line == ('mIoU: {:.4f} Acc: {:.4f} Kappa: {:.4f} Dice: {:.4f}'
                    .format(metrics['mIoU'], metrics['Acc'], metrics['Kappa'],
                            metrics['Dice']))
    saved = json.loads((tmp_path / 'ev' / 'metrics.json').read_text())
    assert saved['mIoU'] == pytest.approx(metrics['mIoU'])
    assert saved['class_names'] == ['road', 'car', 'sky']
    assert not list((tmp_path / 'ev').glob('*.tmp*'))


def test_evaluate_logs_table_and_keeps_eval_mode():
    records = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append(r.getMessage())
    log = logging.getLogger('paddleseg')
    log.addHandler(handler)
    try:
        model = Identity()
        model.eval()
        evaluate(model, FakeDataset())
    finally:
        log.removeHandler(handler)
    assert not model.training
    table = next(r for r in records if 'Precision' in r)
    assert re.search(r'\|\s+0\s+\| road\s+\|\s+0\.7500\s+\|\s+1\.0000\s+'
                     r'\|\s+0\.7500\s+\|', table)


def test_evaluate_json_writes_nan_as_null(tmp_path):
    ds = FakeDataset()
    ds.num_classes = 4  # class 3 is absent everywhere
    metrics = evaluate(Identity(), _Pad4(ds), print_detail=False,
                       save_dir=str(tmp_path))
    assert math.isnan(metrics['class_iou'][3])
    saved = json.loads((tmp_path / 'metrics.json').read_text())
    assert saved['class_iou'][3] is None
    assert saved['mIoU'] == pytest.approx((3 / 4 + 1 / 2 + 1 / 3) / 3)


class _Pad4:
    """FakeDataset with a 4th (never used) channel in the images."""

    def __init__(self, ds):
        self.ds, self.num_classes, self.ignore_index = ds, 4, 255

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        s = self.ds[i]
        s['img'] = np.concatenate([s['img'], -np.ones_like(s['img'][:1])])
        return s


def test_evaluate_shards_by_rank_and_sums(monkeypatch):
    ds = FakeDataset()
    monkeypatch.setattr(paddle.distributed, 'get_rank', lambda: 1)
    monkeypatch.setattr(paddle.distributed, 'get_world_size', lambda: 2)
    seen = []

    def fake_all_reduce(tensor):
        assert tensor.dtype == paddle.int64
        seen.append(tensor.numpy().copy())
        tensor.set_value(tensor + paddle.to_tensor(
            ds.conf - seen[0], dtype='int64'))

    monkeypatch.setattr(paddle.distributed, 'all_reduce', fake_all_reduce)
    metrics = evaluate(Identity(), ds)
    # Rank 1 of 2 sees sample 1 only: (2,2) (0,2) (0,0) (0,0).
    np.testing.assert_array_equal(seen[0], [[2, 0, 1], [0, 0, 0], [0, 0, 1]])
    assert metrics['mIoU'] == pytest.approx(
        metrics_from_confusion(ds.conf)['mIoU'])


class _FileDataset(paddle.io.Dataset):
    """FakeDataset as a paddle Dataset, for the DataLoader path."""

    num_classes, ignore_index = 3, 255

    def __init__(self):
        super().__init__()
        self.ds = FakeDataset()

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        return self.ds[i]


def test_evaluate_with_workers_matches_in_process():
    a = evaluate(Identity(), _FileDataset(), num_workers=1, print_detail=False)
    b = evaluate(Identity(), _FileDataset(), print_detail=False)
    assert a == b


def test_evaluate_size_mismatch_names_the_image():
    ds = FakeDataset()
    ds.samples[1]['trans_info'] = []
    with pytest.raises(DataError, match=r"'b.png' is 2x3 \(HxW\) but its "
                                        r'label is 2x2'):
        evaluate(Identity(), ds)


def _write(path, ids):
    """An RGB image file whose channel argmax is ``ids`` (R=0, G=1, B=2)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = (np.eye(3)[ids] * 200 + 20).astype(np.uint8)
    cv2.imwrite(str(path), rgb[:, :, ::-1])
    return rgb


def test_predict_writes_palette_pngs_and_overlays(tmp_path):
    ids_a = np.array([[0, 1, 2], [2, 1, 0]])
    ids_b = np.array([[1, 1], [2, 0], [0, 2]])
    rgb_a = _write(tmp_path / 'img' / 'x' / 'a.png', ids_a)
    _write(tmp_path / 'img' / 'b.bmp', ids_b)
    (tmp_path / 'img' / 'notes.md').write_text('not an image')
    images, image_dir = get_image_list(str(tmp_path / 'img'))
    assert images == [str(tmp_path / 'img' / 'b.bmp'),
                      str(tmp_path / 'img' / 'x' / 'a.png')]
    out = tmp_path / 'out'
    transforms = Compose([Padding(target_size=[4, 4])])
    written = predict(Identity(), transforms, images, image_dir=image_dir,
                      save_dir=str(out), custom_color=[1, 2, 3])
    assert written == [str(out / 'pseudo_color_prediction' / 'b.png'),
                       str(out / 'pseudo_color_prediction' / 'x' / 'a.png')]
    for name, ids in (('x/a.png', ids_a), ('b.png', ids_b)):
        im = Image.open(out / 'pseudo_color_prediction' / name)
        assert im.mode == 'P'
        np.testing.assert_array_equal(np.asarray(im), ids)
        assert im.getpalette()[:9] == [1, 2, 3] + get_color_map_list(3)[3:]
    added = cv2.imread(str(out / 'added_prediction' / 'x' / 'a.png'))
    added = added[..., ::-1]  # BGR -> RGB
    colours = np.array([[1, 2, 3], [0, 128, 0], [128, 128, 0]])[ids_a]
    np.testing.assert_array_equal(
        added, np.rint(0.6 * rgb_a + 0.4 * colours).astype(np.uint8))


def test_predict_palette_wins_over_custom_color(tmp_path):
    _write(tmp_path / 'one.jpg', np.full((4, 6), 2))  # uniform: JPEG-safe
    images, image_dir = get_image_list(str(tmp_path / 'one.jpg'))
    assert image_dir is None
    predict(Identity(), Compose([]), images, save_dir=str(tmp_path / 'o'),
            palette=[[9, 9, 9], [8, 8, 8], [7, 7, 7]], custom_color=[1, 2, 3])
    im = Image.open(tmp_path / 'o' / 'pseudo_color_prediction' / 'one.png')
    assert im.getpalette()[:9] == [9, 9, 9, 8, 8, 8, 7, 7, 7]
    np.testing.assert_array_equal(np.asarray(im), np.full((4, 6), 2))


def test_get_image_list_txt_and_errors(tmp_path):
    _write(tmp_path / 'd' / 'a.png', np.zeros((1, 1), int))
    _write(tmp_path / 'd' / 'e' / 'b.png', np.zeros((1, 1), int))
    lst = tmp_path / 'd' / 'list.txt'
    lst.write_text('e/b.png labels/b.png\n\na.png\n')
    images, image_dir = get_image_list(str(lst))
    assert images == [str(tmp_path / 'd' / 'e' / 'b.png'),
                      str(tmp_path / 'd' / 'a.png')]
    assert image_dir == str(tmp_path / 'd')
    with pytest.raises(SegError, match="'/no/such' does not exist"):
        get_image_list('/no/such')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(SegError, match='empty.*holds no images'):
        get_image_list(str(tmp_path / 'empty'))
    lst.write_text('missing.png\n')
    with pytest.raises(SegError, match="'missing.png' listed in"):
        get_image_list(str(lst))
    (tmp_path / 'notes.md').write_text('x')
    with pytest.raises(SegError, match="notes.md' is not an image"):
        get_image_list(str(tmp_path / 'notes.md'))


def test_color_map_and_palette_png(tmp_path):
    assert get_color_map_list(4) == [128, 0, 0, 0, 128, 0, 128, 128, 0,
                                     0, 0, 128]
    assert get_color_map_list(2, [5, 6, 7]) == [5, 6, 7, 0, 128, 0]
    with pytest.raises(ConfigError, match='custom_color must be r g b'):
        get_color_map_list(2, [1, 2])
    path = tmp_path / 'sub' / 'p.png'
    save_palette_png(np.array([[0, 3], [255, 1]]), str(path), [[1, 1, 1]])
    im = Image.open(path)
    assert im.mode == 'P'
    np.testing.assert_array_equal(np.asarray(im), [[0, 3], [255, 1]])
    assert im.getpalette()[:6] == [1, 1, 1, 0, 128, 0]
    with pytest.raises(ValueError, match=r'values in \[0, 256\]'):
        save_palette_png(np.array([[0, 256]]), str(path), [])
    blend = overlay(np.full((1, 2, 3), 100, np.uint8), np.array([[0, 1]]),
                    [[200, 0, 0], [0, 0, 50]], weight=0.5, bgr=True)
    np.testing.assert_array_equal(blend, [[[50, 50, 150], [75, 50, 50]]])


def test_evaluate_auc_roc_from_the_probabilities(capsys):
    # Identity's logits are the one-hot images: softmax gives e/(e+2) to the
    # predicted class and 1/(e+2) to the others; the AUC is computed from
    # those over the valid pixels of both samples (the padding cropped).
    from paddleseg.utils.roc import RocAccumulator
    data = FakeDataset()
    metrics = evaluate(Identity(), data, auc_roc=True)
    by_hand = RocAccumulator(3, bins=1 << 14)
    for sample in data.samples:
        h, w = sample['label'].shape
        logit = sample['img'][:, :h, :w]
        by_hand.add(np.exp(logit) / np.exp(logit).sum(0), sample['label'])
    assert metrics['Auc_roc'] == pytest.approx(by_hand.auc())
    # Class 0: 4 pixels, 3 predicted 0 (high score) and one predicted 2
    # (low); the 3 pixels of other classes are predicted 1 or 2 (low). So
    # 3 x 3 pairs are ranked right and 1 x 3 tie: AUC 10.5 / 12.
    assert by_hand.class_auc()[0] == pytest.approx(10.5 / 12)
    assert last_line(capsys.readouterr().out).endswith(
        'Auc_roc: {:.4f}'.format(metrics['Auc_roc']))
