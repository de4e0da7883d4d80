"""Write Cityscapes ``*_gtFine_labelTrainIds.png`` next to every
``*_gtFine_labelIds.png`` so that training need not convert labels on load.

    python tools/convert_cityscapes.py --dataset_root data/cityscapes

Uses the label id -> train id table of ``paddleseg/datasets/cityscapes.py``
(ids that are not evaluated become 255). Existing train-id files are kept
unless ``--overwrite``; each file is written to a temporary name and renamed,
so an interrupted run leaves no half-written label behind.
"""

import argparse
import glob
import os
import sys
from multiprocessing import Pool

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paddleseg.datasets.cityscapes import (  # noqa: E402
    LABEL_IDS_SUFFIX, TRAIN_IDS_SUFFIX, label_ids_to_train_ids)


def convert_file(path):
    """Convert one labelIds PNG; return the train-ids path written."""
    out = path[:-len(LABEL_IDS_SUFFIX)] + TRAIN_IDS_SUFFIX
    with Image.open(path) as im:
        train_ids = label_ids_to_train_ids(np.array(im))
    tmp = out + '.tmp.png'
    Image.fromarray(train_ids).save(tmp)
    os.replace(tmp, out)
    return out


def convert_cityscapes(dataset_root, overwrite=False, num_workers=1):
    """Convert every labelIds file under ``dataset_root/gtFine``.

    Returns:
        tuple[int, int]: (files written, files skipped because they existed).

    Raises:
        FileNotFoundError: if ``dataset_root/gtFine`` does not exist.
    """
    gt_dir = os.path.join(dataset_root, 'gtFine')
    if not os.path.isdir(gt_dir):
        raise FileNotFoundError(
            "'{}' does not exist; --dataset_root must hold the Cityscapes "
            'gtFine folder.'.format(gt_dir))
    sources = sorted(glob.glob(os.path.join(gt_dir, '**',
                                            '*' + LABEL_IDS_SUFFIX),
                               recursive=True))
    todo = [p for p in sources if overwrite or not os.path.isfile(
        p[:-len(LABEL_IDS_SUFFIX)] + TRAIN_IDS_SUFFIX)]
    if num_workers > 1 and len(todo) > 1:
        with Pool(num_workers) as pool:
            pool.map(convert_file, todo, chunksize=16)
    else:
        for path in todo:
            convert_file(path)
    return len(todo), len(sources) - len(todo)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--dataset_root', required=True,
                   help='Folder holding leftImg8bit/ and gtFine/.')
    p.add_argument('--num_workers', type=int, default=os.cpu_count() or 1)
    p.add_argument('--overwrite', action='store_true',
                   help='Rewrite train-id files that already exist.')
    args = p.parse_args()
    try:
        written, skipped = convert_cityscapes(args.dataset_root,
                                              args.overwrite, args.num_workers)
    except FileNotFoundError as e:
        sys.exit(str(e))
    print('Wrote {} *{} files ({} existed and were kept).'.format(
        written, TRAIN_IDS_SUFFIX, skipped))


if __name__ == '__main__':
    main()
