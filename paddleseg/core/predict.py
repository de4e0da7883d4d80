"""Predict label maps for image files and write them (:mod:`.writers`).

For each image, ``save_dir/pseudo_color_prediction/<name>.png`` holds the
class ids as a palette PNG and ``save_dir/added_prediction/<name>.png`` the
colours blended over the image, where ``<name>`` is the image's path relative
to ``image_dir`` (so a folder tree is mirrored) or its file name. Other kinds
(Cityscapes label ids, a model's assets and the results page) are chosen with
:func:`~.writers.output_kinds`.
"""

import collections
import os

import numpy as np
import paddle
from tqdm import tqdm

from paddleseg.transforms import Compose
from paddleseg.utils import logger
from paddleseg.utils.errors import SegError
from .infer import build_infer_fn, reverse_transform
from .writers import DEFAULT_KINDS, ResultWriter

__all__ = ['get_image_list', 'predict']

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')


def _is_image(path):
    return path.lower().endswith(IMAGE_EXTENSIONS)


def _images_in_folder(folder):
    found = []
    for root, _, files in os.walk(folder):
        found.extend(os.path.join(root, f) for f in files if _is_image(f))
    return sorted(found)


def _images_in_list(list_path):
    """Images of a ``.txt`` list: the first field of each line, relative to
    the list's folder when the file is there, else to the working folder."""
    base = os.path.dirname(os.path.abspath(list_path))
    images = []
    with open(list_path, encoding='utf-8') as f:
        for line in f:
            fields = line.split()
            if not fields:
                continue
            path = fields[0]
            if not os.path.isabs(path) and os.path.isfile(
                    os.path.join(base, path)):
                path = os.path.join(base, path)
            if not os.path.isfile(path):
                raise SegError("Image '{}' listed in '{}' does not exist; fix "
                               'the list.'.format(fields[0], list_path))
            images.append(path)
    return images


def get_image_list(image_path):
    """The images to predict, and the folder their output names mirror.

    Args:
        image_path (str): An image file, a folder (searched recursively for
            .jpg/.jpeg/.png/.bmp) or a ``.txt`` list of images.

    Returns:
        tuple: ``(sorted list of image paths, image_dir or None)``; for a
        list, ``image_dir`` is the deepest folder holding all its images.

    Raises:
        SegError: if the path is missing, not an image, or holds no images.
    """
    path = str(image_path)
    if not os.path.exists(path):
        raise SegError("--image_path '{}' does not exist; pass an image, a "
                       'folder of images or a .txt list.'.format(path))
    if os.path.isdir(path):
        images, image_dir = _images_in_folder(path), path
    elif path.lower().endswith('.txt'):
        images = _images_in_list(path)
        image_dir = (os.path.commonpath([os.path.dirname(os.path.abspath(p))
                                         for p in images]) if images else None)
    elif _is_image(path):
        images, image_dir = [path], None
    else:
        raise SegError("--image_path '{}' is not an image ({}) nor a .txt "
                       'list; pass an image, a folder or a list.'.format(
                           path, '/'.join(IMAGE_EXTENSIONS)))
    if not images:
        raise SegError("--image_path '{}' holds no images ({}); check the "
                       'path.'.format(path, '/'.join(IMAGE_EXTENSIONS)))
    return images, image_dir


def _model_assets(model, im, trans_info):
    """The maps of ``model.dump_assets(im)`` (name -> (1, C, h, w) tensor at
    the input's size) at the image's size, as ``(C, H, W)`` arrays."""
    assets = collections.OrderedDict()
    for name, value in model.dump_assets(im).items():
        value = reverse_transform(value.astype('float32'), trans_info,
                                  mode='bilinear')
        assets[name] = value[0].numpy()
    return assets


def _predict_one(model, transforms, path, infer_fn, with_assets=False):
    """Class ids ``(H, W)`` of one image file, and the writer's extras."""
    data = transforms(dict(img=path, trans_info=[], gt_fields=[]))
    im = paddle.to_tensor(np.asarray(data['img'])[np.newaxis])
    scores = infer_fn(model, im, data.get('trans_info'))
    if scores.shape[1] > 256:
        raise SegError('The model predicts {} classes but palette PNGs hold '
                       'at most 256.'.format(scores.shape[1]))
    extras = {}
    if with_assets:
        extras['assets'] = _model_assets(model, im, data.get('trans_info'))
    return paddle.argmax(scores, axis=1)[0].numpy().astype(np.uint8), extras


def predict(model, transforms, image_list, image_dir=None, save_dir='output',
            custom_color=None, palette=None, aug_pred=False, scales=1.0,
            flip_horizontal=False, flip_vertical=False, is_slide=False,
            stride=None, crop_size=None, kinds=DEFAULT_KINDS,
            aug_combine='logits'):
    """Predict every image of ``image_list`` and save the results.

    In a distributed run each rank predicts the images ``rank::world_size``.

    Args:
        model (paddle.nn.Layer): The model; its training flag is restored.
        transforms (Compose | list): The validation transforms (a list of
            built transforms is wrapped in a :class:`Compose`).
        image_list (list[str]): Image files.
        image_dir (str|None): Folder whose tree the output names mirror.
        save_dir (str): Output folder.
        custom_color (list[int]|None): Flat ``[r, g, b, ...]`` colours.
        palette (list|None): ``[[r, g, b], ...]``; wins over custom_color.
        aug_pred (bool): Test-time augmentation (scales and flips).
        scales, flip_horizontal, flip_vertical: Augmentation options.
        is_slide, stride, crop_size: Sliding-window options (``(w, h)``).
        aug_combine (str): How the augmentation combines its views
            (``'logits'`` or ``'probs'``; see
            :func:`~paddleseg.core.infer.aug_inference`).
        kinds (tuple[str]): What to write per image (see
            :class:`~paddleseg.core.writers.ResultWriter`). With ``assets``
            the maps of ``model.dump_assets(x)`` (one plain forward of the
            transformed image) are written, and rank 0 writes
            ``save_dir/index.html``.

    Returns:
        list[str]: The files of the first kind (palette PNGs by default)
        written by this rank.
    """
    rank = paddle.distributed.get_rank()
    world_size = paddle.distributed.get_world_size()
    if not isinstance(transforms, Compose):
        transforms = Compose(transforms)
    writer = ResultWriter(save_dir, image_dir, palette, custom_color, kinds)
    infer_fn = build_infer_fn(aug_pred, scales, flip_horizontal, flip_vertical,
                              is_slide, stride, crop_size, aug_combine)
    with_assets = 'assets' in kinds and hasattr(model, 'dump_assets')
    if 'assets' in kinds and not with_assets:
        logger.info('%s has no dump_assets(x); the results page shows the '
                    'input, prediction and composite only.',
                    type(model).__name__)
    mine = list(image_list)[rank::world_size]
    written = []
    was_training = model.training
    model.eval()
    try:
        with paddle.no_grad():
            for path in tqdm(mine, desc='predict', unit='img', leave=False,
                             dynamic_ncols=True,
                             disable=None if rank == 0 else True):
                pred, extras = _predict_one(model, transforms, path, infer_fn,
                                            with_assets)
                written.append(writer.write(path, pred, **extras)[0])
    finally:
        if was_training:
            model.train()
    if 'assets' in kinds and rank == 0:
        logger.info('Results page: %s', writer.write_page(image_list))
    logger.info('Predicted %d images; results are in %s.', len(written),
                save_dir)
    return written
