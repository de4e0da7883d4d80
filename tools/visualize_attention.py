"""Draw CCNet's criss-cross attention for chosen pixels (the CCNet paper's
figure): with R = 1 a pixel sees its row and column; with R = 2 the second
pass reaches every pixel through the crosses of the first.

    python tools/visualize_attention.py \\
        --config configs/quick_start/ccnet_resnet18_demo.yml \\
        --model_path output/demo/best_model/model.pdparams \\
        --image_path data/demo/leftImg8bit/val/demo/demo_000000_000019_leftImg8bit.png \\
        --points 60,90 200,40 --save_dir output/attention

For each point ``x,y`` (image pixels) it writes ``<image>_x<X>_y<Y>.png``:
the image with the point marked, then the R = 1 and R = 2 attention maps
overlaid, and ``.npz`` with both maps at the head's resolution (each sums to
1). R = 2 composes the two passes' weights: a(u -> z) = sum over v on u's
cross of a2(u, v) a1(v, z). A model trained with R = 1 runs its attention a
second time for the R = 2 picture.
"""

import argparse
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paddleseg.utils import cli  # noqa: E402
from paddleseg.utils.errors import SegError  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    cli.add_common_args(p)
    p.add_argument('--model_path', required=True,
                   help='model.pdparams of a CCNet (or a folder holding it).')
    p.add_argument('--image_path', required=True, help='One image file.')
    p.add_argument('--points', nargs='+', required=True, metavar='X,Y',
                   help='Pixels (column,row in the image) to draw.')
    p.add_argument('--save_dir', default='output/attention')
    return p.parse_args(argv)


def parse_points(texts, width, height):
    points = []
    for text in texts:
        try:
            x, y = (int(v) for v in text.split(','))
        except ValueError:
            raise SegError('--points takes X,Y integer pairs, got {!r}.'
                           .format(text))
        if not (0 <= x < width and 0 <= y < height):
            raise SegError('--points {} is outside the {}x{} (WxH) image; '
                           'give 0 <= X < {} and 0 <= Y < {}.'.format(
                               text, width, height, width, height))
        points.append((x, y))
    return points


def cross_to_grid(weights, h, w, row, col):
    """(H + W,) weights of pixel (row, col) -> (H, W) map: the first H over
    its column, the last W over its row."""
    grid = np.zeros((h, w), np.float64)
    grid[:, col] += weights[:h]
    grid[row, :] += weights[h:]
    return grid


def composed_map(a1, a2, row, col):
    """R = 2 weights of pixel (row, col) over the whole map: the second
    pass's cross weights spread through the first pass's crosses."""
    h, w = a1.shape[:2]
    second = a2[row, col]
    grid = np.zeros((h, w), np.float64)
    for i in range(h):  # through the pixels of its column
        grid += second[i] * cross_to_grid(a1[i, col], h, w, i, col)
    for j in range(w):  # and of its row
        grid += second[h + j] * cross_to_grid(a1[row, j], h, w, row, j)
    return grid


def mark_point(image, point):
    """A copy of ``image`` with ``point`` circled in white."""
    out = image.copy()
    cv2.circle(out, point, max(3, image.shape[0] // 40), (255, 255, 255), 2)
    return out


def overlay_map(image, grid, point):
    """Image (BGR) with a heat map of ``grid`` and the point circled."""
    heat = cv2.resize(grid / max(grid.max(), 1e-12), image.shape[1::-1],
                      interpolation=cv2.INTER_NEAREST)
    heat = np.clip(heat, 0, 1)
    colour = cv2.applyColorMap(np.uint8(heat * 255), cv2.COLORMAP_JET)
    # Opacity grows with the weight, so unattended pixels show the image.
    alpha = (0.15 + 0.75 * np.sqrt(heat))[:, :, None]
    return mark_point(np.uint8(np.round(image * (1 - alpha) +
                                        colour * alpha)), point)


def attention_for_points(model, transforms, image_path, points):
    """``[(r1_map, r2_map)]`` at the head's resolution, one per point."""
    import paddle
    data = transforms(dict(img=image_path, trans_info=[], gt_fields=[]))
    img = np.asarray(data['img'])
    in_h, in_w = img.shape[1:]
    model.eval()
    with paddle.no_grad():
        maps = model.attention_maps(paddle.to_tensor(img[np.newaxis]),
                                    recurrence=2)
    a1, a2 = (m[0].numpy().astype(np.float64) for m in maps)
    h, w = a1.shape[:2]
    result = []
    for x, y in points:
        row, col = min(y * h // in_h, h - 1), min(x * w // in_w, w - 1)
        result.append((cross_to_grid(a1[row, col], h, w, row, col),
                       composed_map(a1, a2, row, col)))
    return result


def main(argv=None):
    args = parse_args(argv)
    from paddleseg.core.script import load_trained_model
    from paddleseg.transforms import Compose

    if not os.path.isfile(args.image_path):
        raise SegError("--image_path '{}' is not a file; give one image."
                       .format(args.image_path))
    image = cv2.imread(args.image_path, cv2.IMREAD_COLOR)
    if image is None:
        raise SegError("--image_path '{}' cannot be read as an image."
                       .format(args.image_path))
    points = parse_points(args.points, image.shape[1], image.shape[0])

    def needs_attention(model):
        if not hasattr(model, 'attention_maps'):
            raise SegError('{} (model.type in {}) has no criss-cross '
                           'attention; give a CCNet config.'.format(
                               type(model).__name__, args.config))

    _, builder, model, _ = load_trained_model(args, needs_attention)
    maps = attention_for_points(model, Compose(builder.val_transforms),
                                args.image_path, points)
    os.makedirs(args.save_dir, exist_ok=True)
    stem = os.path.splitext(os.path.basename(args.image_path))[0]
    for (x, y), (r1, r2) in zip(points, maps):
        panel = np.concatenate([mark_point(image, (x, y)), overlay_map(image, r1, (x, y)),
                                overlay_map(image, r2, (x, y))], axis=1)
        base = os.path.join(args.save_dir, '{}_x{}_y{}'.format(stem, x, y))
        if not cv2.imwrite(base + '.png', panel):
            raise SegError("Could not write '{}.png'; check --save_dir."
                           .format(base))
        np.savez(base + '.npz', r1=r1, r2=r2, point=(x, y))
        print('{}.png  (image | R = 1 | R = 2)'.format(base))


if __name__ == '__main__':
    cli.run(main)
