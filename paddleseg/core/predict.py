"""Predict label maps for image files; save palette PNGs and overlays.

For each image, ``save_dir/pseudo_color_prediction/<name>.png`` holds the
class ids as a palette PNG and ``save_dir/added_prediction/<name>.png`` the
colours blended over the image, where ``<name>`` is the image's path relative
to ``image_dir`` (so a folder tree is mirrored) or its file name.
"""

import os

import cv2
import numpy as np
import paddle
from tqdm import tqdm

from paddleseg.utils import logger
from paddleseg.utils.errors import DataError, SegError
from paddleseg.utils.visualize import (flat_palette, get_color_map_list,
                                       overlay, save_palette_png)
from .infer import build_infer_fn

__all__ = ['get_image_list', 'predict', 'resolve_palette', 'save_results']

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


def _output_name(image_path, image_dir):
    """``image_path`` relative to ``image_dir`` (or its base name), as .png."""
    if image_dir:
        name = os.path.relpath(os.path.abspath(image_path),
                               os.path.abspath(image_dir))
    else:
        name = os.path.basename(image_path)
    return os.path.splitext(name)[0] + '.png'


def resolve_palette(palette, custom_color):
    """A 256-colour flat palette: ``palette``, else ``custom_color`` over the
    default colours, else the default colours."""
    if palette is not None:
        return flat_palette(palette)
    return get_color_map_list(256, custom_color)


def _write_png(path, image_bgr):
    """Write a BGR image; encode then write so any path name works."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ok, buf = cv2.imencode('.png', image_bgr)
    if not ok:
        raise SegError("Could not encode the overlay for '{}'.".format(path))
    buf.tofile(path)


def _predict_one(model, transforms, path, infer_fn):
    """Class ids ``(H, W)`` of one image file."""
    data = transforms(dict(img=path, trans_info=[], gt_fields=[]))
    im = paddle.to_tensor(np.asarray(data['img'])[np.newaxis])
    scores = infer_fn(model, im, data.get('trans_info'))
    if scores.shape[1] > 256:
        raise SegError('The model predicts {} classes but palette PNGs hold '
                       'at most 256.'.format(scores.shape[1]))
    return paddle.argmax(scores, axis=1)[0].numpy().astype(np.uint8)


def save_results(path, pred, image_dir, save_dir, palette):
    """Write the palette PNG and the overlay of one image.

    Args:
        path (str): The image file.
        pred (np.ndarray): (H, W) uint8 class ids.
        image_dir (str|None): Folder whose tree the output names mirror.
        save_dir (str): Output folder.
        palette (list): Flat 256-colour palette (:func:`resolve_palette`).

    Returns:
        str: The palette PNG written.
    """
    name = _output_name(path, image_dir)
    png = os.path.join(save_dir, 'pseudo_color_prediction', name)
    save_palette_png(pred, png, palette)
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise DataError("Image '{}' cannot be read as a colour image."
                        .format(path))
    if image.shape[:2] != pred.shape:
        raise DataError(
            "The prediction for '{}' is {}x{} (HxW) but the image is {}x{}; "
            'the transforms must record every resize and padding in '
            'trans_info.'.format(path, *pred.shape, *image.shape[:2]))
    _write_png(os.path.join(save_dir, 'added_prediction', name),
               overlay(image, pred, palette, bgr=True))
    return png


def predict(model, transforms, image_list, image_dir=None, save_dir='output',
            custom_color=None, palette=None, aug_pred=False, scales=1.0,
            flip_horizontal=False, flip_vertical=False, is_slide=False,
            stride=None, crop_size=None):
    """Predict every image of ``image_list`` and save the results.

    In a distributed run each rank predicts the images ``rank::world_size``.

    Args:
        model (paddle.nn.Layer): The model; its training flag is restored.
        transforms (callable): ``transforms(dict(img=path, trans_info=[],
            gt_fields=[]))`` returns the sample with ``img`` CHW float32.
        image_list (list[str]): Image files.
        image_dir (str|None): Folder whose tree the output names mirror.
        save_dir (str): Output folder.
        custom_color (list[int]|None): Flat ``[r, g, b, ...]`` colours.
        palette (list|None): ``[[r, g, b], ...]``; wins over custom_color.
        aug_pred (bool): Test-time augmentation (scales and flips).
        scales, flip_horizontal, flip_vertical: Augmentation options.
        is_slide, stride, crop_size: Sliding-window options (``(w, h)``).

    Returns:
        list[str]: The palette PNGs written by this rank.
    """
    rank = paddle.distributed.get_rank()
    world_size = paddle.distributed.get_world_size()
    colours = resolve_palette(palette, custom_color)
    infer_fn = build_infer_fn(aug_pred, scales, flip_horizontal, flip_vertical,
                              is_slide, stride, crop_size)
    mine = list(image_list)[rank::world_size]
    written = []
    was_training = model.training
    model.eval()
    try:
        with paddle.no_grad():
            for path in tqdm(mine, desc='predict', unit='img', leave=False,
                             dynamic_ncols=True,
                             disable=None if rank == 0 else True):
                pred = _predict_one(model, transforms, path, infer_fn)
                written.append(save_results(path, pred, image_dir, save_dir,
                                            colours))
    finally:
        if was_training:
            model.train()
    logger.info('Predicted %d images; results are in %s.', len(written),
                save_dir)
    return written
