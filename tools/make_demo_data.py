"""Write a small synthetic street-scene dataset in the Cityscapes layout.

    python tools/make_demo_data.py --out data/demo [--seed 0]

One-point-perspective streets: sky, buildings with windows, trees and hedges,
sidewalks and a road narrowing to a vanishing point, cars and people sized by
their distance; labels are Cityscapes train ids (road 0, sidewalk 1, building
2, vegetation 8, sky 10, person 11, car 13). Regions are textured and noisy
and class colours overlap (grey buildings, road and overcast sky; windows
reflecting the sky; cars of any colour), so a model must use shape and
context, not a pixel's colour alone. Writes ``OUT/leftImg8bit/{train,val}/
demo/NAME_leftImg8bit.png``, ``OUT/gtFine/{train,val}/demo/
NAME_gtFine_labelTrainIds.png`` and PaddleSeg file lists ``OUT/train.txt``,
``OUT/val.txt``. The same arguments give byte-identical files; the ``demo``
city folders are replaced on every run. ``OUT/demo_data.json`` records the
arguments and a hash of the painting code, so ``tools/run_demo.py`` remakes
data written by an older version (:func:`is_current`).
"""

import argparse
import hashlib
import json
import os
import shutil

import cv2
import numpy as np

import demo_scene
from demo_scene import CLASSES, draw_scene  # noqa: F401  (CLASSES: API)

STAMP = 'demo_data.json'


def _stamp(seed, num_train, num_val, width, height):
    with open(demo_scene.__file__, 'rb') as f:
        painter = hashlib.sha1(f.read()).hexdigest()[:16]
    return {'painter': painter, 'seed': seed, 'num_train': num_train,
            'num_val': num_val, 'width': width, 'height': height}


def is_current(out, seed=0, num_train=60, num_val=12, width=256, height=128):
    """Whether ``out`` holds the data these arguments and this version of
    the painter make (its ``demo_data.json`` says so)."""
    try:
        with open(os.path.join(out, STAMP)) as f:
            found = json.load(f)
    except (OSError, ValueError):
        return False
    return found == _stamp(seed, num_train, num_val, width, height)


def make_demo_data(out, seed=0, num_train=60, num_val=12, width=256,
                   height=128):
    """Write the demo dataset under ``out``; return ``{split: count}``.

    Args:
        out (str): Output folder (the ``demo`` city folders in it are
            replaced).
        seed (int): Seed of every random choice.
        num_train (int): Training images.
        num_val (int): Validation images.
        width (int): Image width (>= 16).
        height (int): Image height (>= 16).
    """
    if min(width, height) < 16:
        raise ValueError('width and height must be at least 16, got {}x{}.'
                         .format(width, height))
    counts = {}
    for split_id, (split, num) in enumerate((('train', num_train),
                                             ('val', num_val))):
        img_dir = os.path.join(out, 'leftImg8bit', split, 'demo')
        gt_dir = os.path.join(out, 'gtFine', split, 'demo')
        lines = []
        for d in (img_dir, gt_dir):
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
        for i in range(num):
            img, label = draw_scene(np.random.default_rng([seed, split_id, i]),
                                    height, width)
            name = 'demo_{:06d}_000019'.format(i)
            img_path = os.path.join(img_dir, name + '_leftImg8bit.png')
            gt_path = os.path.join(gt_dir, name + '_gtFine_labelTrainIds.png')
            cv2.imwrite(img_path, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            cv2.imwrite(gt_path, label)
            lines.append('{} {}\n'.format(os.path.relpath(img_path, out),
                                          os.path.relpath(gt_path, out)))
        with open(os.path.join(out, split + '.txt'), 'w') as f:
            f.writelines(lines)
        counts[split] = num
    with open(os.path.join(out, STAMP), 'w') as f:
        json.dump(_stamp(seed, num_train, num_val, width, height), f)
    return counts


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='data/demo')
    for name, default in (('seed', 0), ('num_train', 60), ('num_val', 12),
                          ('width', 256), ('height', 128)):
        p.add_argument('--' + name, type=int, default=default)
    args = p.parse_args()
    counts = make_demo_data(args.out, args.seed, args.num_train, args.num_val,
                            args.width, args.height)
    print('Wrote {} train and {} val images to {}.'.format(
        counts['train'], counts['val'], args.out))


if __name__ == '__main__':
    main()
