"""Colouring label maps: palettes, palette PNGs and overlays on the image.

A palette is kept as PaddleSeg keeps it, one flat ``[r, g, b, r, g, b, ...]``
list indexed by class id; functions here also accept a list of ``[r, g, b]``
triples.
"""

import os

import numpy as np
from PIL import Image

from .errors import ConfigError

__all__ = ['get_color_map_list', 'flat_palette', 'save_palette_png',
           'colorize', 'overlay']


def _bit_colour(index):
    """The PASCAL-VOC style colour of ``index``: its bits are dealt in turn
    to red, green and blue, most significant colour bit first."""
    rgb = [0, 0, 0]
    shift = 7
    while index and shift >= 0:
        for c in range(3):
            rgb[c] |= ((index >> c) & 1) << shift
        index >>= 3
        shift -= 1
    return rgb


def get_color_map_list(num_classes, custom_color=None):
    """A flat palette of ``num_classes`` colours.

    Class ``i`` gets the VOC colour of index ``i + 1`` (black, index 0, is
    skipped, so no class is drawn black), as in PaddleSeg.

    Args:
        num_classes (int): Number of colours.
        custom_color (list[int]|None): Flat ``[r, g, b, ...]`` that replaces
            the first ``len(custom_color) // 3`` colours.

    Returns:
        list[int]: ``3 * num_classes`` values in ``[0, 255]``.

    Raises:
        ConfigError: if ``custom_color`` is not r, g, b triples in [0, 255].
    """
    colours = []
    for i in range(1, num_classes + 1):
        colours.extend(_bit_colour(i))
    if custom_color:
        custom = [int(v) for v in custom_color]
        if len(custom) % 3 or any(v < 0 or v > 255 for v in custom):
            raise ConfigError(
                'custom_color must be r g b triples of integers in [0, 255], '
                'got {} values: {}.'.format(len(custom), custom[:12]))
        n = min(len(custom), len(colours))
        colours[:n] = custom[:n]
    return colours


def flat_palette(palette, length=256):
    """A flat palette of ``length`` colours for a PIL 'P' image.

    Args:
        palette (list): Flat ``[r, g, b, ...]`` or ``[[r, g, b], ...]``.
        length (int): Colours in the result; missing ones come from
            :func:`get_color_map_list`.

    Returns:
        list[int]: ``3 * length`` values.
    """
    flat = np.asarray(palette, dtype=np.int64).reshape(-1).tolist()
    if len(flat) % 3:
        raise ConfigError('A palette must hold r, g, b triples, got {} '
                          'values.'.format(len(flat)))
    default = get_color_map_list(length)
    return (flat + default[len(flat):])[:3 * length]


def _check_label(label):
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError('A label map must be 2-D (H, W), got shape {}.'
                         .format(label.shape))
    if label.size and (label.min() < 0 or label.max() > 255):
        raise ValueError('A palette PNG holds class ids 0-255, but the label '
                         'map holds values in [{}, {}].'.format(
                             label.min(), label.max()))
    return label.astype(np.uint8)


def save_palette_png(label_hw, path, palette):
    """Save a label map as a palette ('P' mode) PNG whose indices are the
    class ids, creating the folder.

    Args:
        label_hw (np.ndarray): ``(H, W)`` class ids in ``[0, 255]``.
        path (str): Output file.
        palette (list): Colours, flat or as triples.
    """
    image = Image.fromarray(_check_label(label_hw))  # 'L'; putpalette -> 'P'
    image.putpalette(flat_palette(palette))
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    image.save(path, format='PNG')


def colorize(label, palette):
    """``(H, W, 3)`` uint8 RGB picture of a label map."""
    table = np.asarray(flat_palette(palette), dtype=np.uint8).reshape(-1, 3)
    return table[_check_label(label)]


def overlay(image, label, palette, weight=0.6, bgr=False):
    """Blend a coloured label map over an image.

    Args:
        image (np.ndarray): ``(H, W, 3)`` uint8 image.
        label (np.ndarray): ``(H, W)`` class ids.
        palette (list): RGB colours, flat or as triples.
        weight (float): Weight of the image; the colours get ``1 - weight``.
        bgr (bool): ``image`` is in BGR order (as OpenCV reads it); the
            result then is too.

    Returns:
        np.ndarray: ``(H, W, 3)`` uint8 in the order of ``image``.
    """
    image = np.asarray(image)
    colours = colorize(label, palette)
    if bgr:
        colours = colours[:, :, ::-1]
    if image.shape != colours.shape:
        raise ValueError('The image has shape {} but the label map {}; they '
                         'must have the same height and width.'.format(
                             image.shape, np.asarray(label).shape))
    blend = weight * image.astype(np.float32) + (1 - weight) * colours
    return np.clip(np.rint(blend), 0, 255).astype(np.uint8)
