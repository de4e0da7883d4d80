"""Cityscapes outputs through the writer seam: label-id PNGs that the
official cityscapesScripts evaluator scores as val.py does, and
``--dump_assets`` (per-map PNGs and the results page).

The evaluator runs offline on the submission folder as it is, with its
instance-level score (iIoU) switched off through its ``args``: that part
needs instanceIds and calls ``np.in1d``, which numpy 2.4 removed
(cityscapesScripts 2.3.0).
"""

import collections
import html.parser
import json
import logging
import math
import os
import subprocess
import sys
from urllib.parse import unquote

import cv2
import numpy as np
import paddle
import pytest
from PIL import Image

from paddleseg.core.predict import get_image_list, predict
from paddleseg.core.val import evaluate
from paddleseg.core.writers import ResultWriter, output_kinds
from paddleseg.datasets import Cityscapes
from paddleseg.datasets.cityscapes import TRAIN_ID_TO_LABEL_ID
from paddleseg.transforms import Resize
from paddleseg.utils.errors import SegError


class ColourCoded(paddle.nn.Layer):
    """Class ``c`` scores ``-|R - 10 c|``: the prediction is the train id
    painted into the red channel."""

    def __init__(self, num_classes=19, assets=False):
        super().__init__()
        self.num_classes = num_classes
        self.scale = self.create_parameter(
            [1], default_initializer=paddle.nn.initializer.Constant(1.0))
        if assets:
            self.dump_assets = self._dump_assets

    def forward(self, x):
        centres = paddle.arange(self.num_classes, dtype='float32').reshape(
            [1, -1, 1, 1]) * 10
        return [-paddle.abs(x[:, :1] * self.scale - centres)]

    def _dump_assets(self, x):
        attn = x[:, 1:2] / 255.0  # the green channel, as an attention map
        return collections.OrderedDict([('attn_0.5x', attn),
                                        ('pred_0.5x', self(x)[0])])


def _scene(rng, h=16, w=32):
    """(prediction, ground truth) train-id maps that mostly agree."""
    pred = np.zeros((h, w), np.uint8)
    pred[:, 8:] = 2                  # building
    pred[10:, :] = 0                 # road
    pred[11:14, 20:26] = 13          # car
    pred[2:6, 2:5] = 11              # person
    pred[0, :4] = 15                 # bus: predicted, not in the ground truth
    gt = pred.copy()
    gt[0, :4] = 2
    flip = rng.rand(h, w) < 0.25
    gt[flip] = rng.choice([0, 1, 2, 5, 13], size=int(flip.sum()))  # 5: pole
    gt[rng.rand(h, w) < 0.1] = 255   # ignored (label ids 0, 1, 4 below)
    return pred, gt


def _label_ids(gt, rng):
    ids = np.zeros_like(gt)
    for train_id, label_id in TRAIN_ID_TO_LABEL_ID.items():
        ids[gt == train_id] = label_id
    ignored = gt == 255
    ids[ignored] = rng.choice([0, 1, 4], size=int(ignored.sum()))
    return ids


@pytest.fixture
def cityscapes_val(tmp_path):
    """Three val images (two cities) with labelIds ground truth; red is the
    prediction (10 x train id), green a ramp (an 'attention map')."""
    root = tmp_path / 'cityscapes'
    rng = np.random.RandomState(0)
    for city, frame in (('frankfurt', '000000_000294'),
                        ('frankfurt', '000001_000019'),
                        ('lindau', '000000_000019')):
        pred, gt = _scene(rng)
        name = '{}_{}'.format(city, frame)
        img_dir = root / 'leftImg8bit' / 'val' / city
        gt_dir = root / 'gtFine' / 'val' / city
        img_dir.mkdir(parents=True, exist_ok=True)
        gt_dir.mkdir(parents=True, exist_ok=True)
        ramp = np.tile(np.arange(pred.shape[1]) * 8, (pred.shape[0], 1))
        rgb = np.stack([pred * 10, ramp, np.zeros_like(pred)],
                       -1).astype(np.uint8)
        cv2.imwrite(str(img_dir / (name + '_leftImg8bit.png')),
                    cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        ids = _label_ids(gt, rng)
        Image.fromarray(ids).save(gt_dir / (name + '_gtFine_labelIds.png'))
    return str(root)


EVALUATE = """
import sys
from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as e
e.args.evalInstLevelScore = False
sys.argv = sys.argv[:1]
e.main()
"""


def _cityscapes_scripts(root, results, export):
    """Run the official evaluator offline (its environment variables say
    where the data and results are); its JSON result."""
    os.makedirs(export, exist_ok=True)
    env = dict(os.environ, CITYSCAPES_DATASET=root, CITYSCAPES_RESULTS=results,
               CITYSCAPES_EXPORT_DIR=export)
    proc = subprocess.run([sys.executable, '-c', EVALUATE], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(os.path.join(export, 'resultPixelLevelSemanticLabeling.json')) \
            as f:
        return json.load(f)


def test_cityscapes_scripts_scores_the_submission_as_val_does(
        cityscapes_val, tmp_path):
    pytest.importorskip('cityscapesscripts')
    from cityscapesscripts.helpers.labels import trainId2label
    model = ColourCoded()
    images, image_dir = get_image_list(os.path.join(cityscapes_val,
                                                    'leftImg8bit', 'val'))
    save_dir = str(tmp_path / 'out')
    predict(model, [], images, image_dir=image_dir, save_dir=save_dir,
            kinds=output_kinds(dump_for_submission=True))
    submitted = sorted(os.path.relpath(os.path.join(d, f), save_dir)
                       for d, _, fs in os.walk(os.path.join(save_dir,
                                                            'submit'))
                       for f in fs)
    assert submitted == [os.path.join('submit', 'frankfurt', n) for n in (
        'frankfurt_000000_000294_leftImg8bit.png',
        'frankfurt_000001_000019_leftImg8bit.png')] + [
        os.path.join('submit', 'lindau',
                     'lindau_000000_000019_leftImg8bit.png')]
    png = Image.open(os.path.join(save_dir, submitted[0]))
    assert png.mode == 'L' and png.size == (32, 16)
    assert set(np.unique(np.asarray(png)).tolist()) <= set(
        TRAIN_ID_TO_LABEL_ID.values())

    official = _cityscapes_scripts(cityscapes_val,
                                   os.path.join(save_dir, 'submit'),
                                   str(tmp_path / 'export'))
    ours = evaluate(model, Cityscapes([], cityscapes_val, mode='val'),
                    print_detail=False)
    compared = 0
    for train_id, iou in enumerate(ours['class_iou']):
        theirs = official['classScores'][trainId2label[train_id].name]
        if math.isnan(iou):
            assert math.isnan(theirs), train_id
        else:
            assert theirs == pytest.approx(iou, abs=1e-12), train_id
            compared += 1
    # road, sidewalk, building, pole, person, car, bus are present; the
    # others are NaN in both.
    assert compared == 7
    assert official['averageScoreClasses'] == pytest.approx(ours['mIoU'])
    assert ours['class_iou'][1] == 0.0  # sidewalk: in the ground truth only
    assert ours['class_iou'][5] == 0.0  # pole: in the ground truth only
    assert ours['class_iou'][15] == 0.0  # bus: predicted only


def test_submission_needs_cityscapes_train_ids(tmp_path):
    image = tmp_path / 'a.png'
    cv2.imwrite(str(image), np.zeros((2, 2, 3), np.uint8))
    writer = ResultWriter(str(tmp_path / 'out'), kinds=('submit', ))
    with pytest.raises(SegError, match='holds class 30; a Cityscapes '
                       'submission needs a model of the 19 train ids'):
        writer.write(str(image), np.full((2, 2), 30, np.uint8))


class _Links(html.parser.HTMLParser):

    def __init__(self):
        super().__init__()
        self.headers, self.rows, self.links = [], [], []
        self._in_th = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self._in_th = tag == 'th'
        if tag == 'tr':
            self.rows.append([])
        if tag in ('a', 'img'):
            link = attrs.get('href') or attrs.get('src')
            self.links.append(link)
            if tag == 'img':
                self.rows[-1].append(attrs['alt'])

    def handle_data(self, data):
        if self._in_th:
            self.headers.append(data)

    def handle_endtag(self, tag):
        self._in_th = False


def _page(save_dir):
    parser = _Links()
    with open(os.path.join(save_dir, 'index.html'), encoding='utf-8') as f:
        parser.feed(f.read())
    return parser


def test_dump_assets_writes_maps_at_the_image_size_and_a_page(
        cityscapes_val, tmp_path):
    model = ColourCoded(assets=True)
    images, image_dir = get_image_list(os.path.join(cityscapes_val,
                                                    'leftImg8bit', 'val'))
    save_dir = str(tmp_path / 'out')
    # Resize: the maps come back to the image's size as the prediction does.
    predict(model, [Resize(target_size=(64, 32))], images,
            image_dir=image_dir, save_dir=save_dir,
            kinds=output_kinds(dump_assets=True))
    name = os.path.join('frankfurt', 'frankfurt_000000_000294_leftImg8bit')
    attn = np.asarray(Image.open(os.path.join(
        save_dir, 'assets', name + '_attn_0.5x.png')))
    rgb = cv2.imread(images[0])[:, :, ::-1]
    assert attn.shape == (16, 32) and attn.dtype == np.uint8
    # The green ramp, resized up and back down: within rounding.
    assert np.abs(attn.astype(int) - rgb[:, :, 1]).max() <= 1
    logits = Image.open(os.path.join(save_dir, 'assets',
                                     name + '_pred_0.5x.png'))
    pred = Image.open(os.path.join(save_dir, 'pseudo_color_prediction',
                                   name + '.png'))
    assert logits.mode == 'P' and logits.getpalette() == pred.getpalette()
    np.testing.assert_array_equal(np.asarray(logits), np.asarray(pred))

    page = _page(save_dir)
    assert page.headers == ['image', 'input', 'prediction', 'composite',
                            'attn_0.5x', 'pred_0.5x']
    assert len(page.rows) == 1 + 3  # header row + one per image
    assert all(r == page.headers[1:] for r in page.rows[1:])
    assert len(page.links) == 3 * 5 * 2  # each picture: <a href> + <img src>
    for link in page.links:
        assert not os.path.isabs(link) and '://' not in link
        assert os.path.isfile(os.path.join(save_dir, unquote(link))), link


def test_a_model_without_assets_gets_the_page_without_them(
        cityscapes_val, tmp_path, caplog):
    images, image_dir = get_image_list(os.path.join(cityscapes_val,
                                                    'leftImg8bit', 'val'))
    save_dir = str(tmp_path / 'out')
    with caplog.at_level(logging.INFO, logger='paddleseg'):
        predict(ColourCoded(), [], images, image_dir=image_dir,
                save_dir=save_dir, kinds=output_kinds(True, True))
    assert 'ColourCoded has no dump_assets(x)' in caplog.text
    assert _page(save_dir).headers == ['image', 'input', 'prediction',
                                       'composite']
    assert not os.path.exists(os.path.join(save_dir, 'assets'))
    assert len(os.listdir(os.path.join(save_dir, 'submit', 'frankfurt'))) == 2


def test_acfnet_dumps_its_coarse_and_fine_predictions(tmp_path):
    from paddleseg.models import ACFNet
    from paddleseg.models.backbones import ResNet18_vd
    paddle.seed(0)
    model = ACFNet(3, ResNet18_vd(output_stride=8), aspp_channels=8,
                   coarse_channels=8, acf_channels=8, fine_channels=8)
    image = tmp_path / 'x.png'
    cv2.imwrite(str(image), np.random.RandomState(0).randint(
        0, 255, (32, 48, 3), dtype=np.uint8))
    predict(model, [], [str(image)], save_dir=str(tmp_path / 'out'),
            kinds=output_kinds(dump_assets=True))
    for asset in ('pred_coarse', 'pred_fine'):
        im = Image.open(tmp_path / 'out' / 'assets' / 'x_{}.png'.format(asset))
        assert im.mode == 'P' and im.size == (48, 32)
        assert np.asarray(im).max() < 3
    assert _page(str(tmp_path / 'out')).headers[-2:] == ['pred_coarse',
                                                         'pred_fine']
