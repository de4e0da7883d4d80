"""What is written for each segmented image, by ``predict.py`` and by
``deploy/python/infer.py`` alike.

A :class:`ResultWriter` holds what a run decided once (output folder, the
folder whose tree the output names mirror, the palette, the kinds of output
asked for); ``write(image_path, pred)`` writes every kind for one image.
Each kind is a small function registered with :func:`result_kind` under the
name of the folder it writes into, so a new output (Cityscapes label ids for
a benchmark submission, composited pictures) is one function that both entry
points offer with the same flag.

Output names mirror the input: ``save_dir/<kind>/<name>.png``, where
``<name>`` is the image's path relative to ``image_dir`` (a folder tree is
mirrored) or its file name.
"""

import os

import cv2
import numpy as np

from paddleseg.utils.errors import DataError, SegError
from paddleseg.utils.visualize import (flat_palette, get_color_map_list,
                                       overlay, save_palette_png)

__all__ = ['ResultWriter', 'result_kind', 'resolve_palette', 'write_png',
           'KINDS', 'DEFAULT_KINDS']

# name -> fn(writer, image_path, pred, path, extras): writes ``path``.
KINDS = {}
# What predict.py and infer.py write unless asked otherwise (PaddleSeg's).
DEFAULT_KINDS = ('pseudo_color_prediction', 'added_prediction')


def result_kind(name):
    """Register ``fn(writer, image_path, pred, path, extras)`` as the output
    kind ``name`` (also the folder it writes into)."""

    def register(fn):
        if name in KINDS:
            raise KeyError('Result kind {!r} is registered twice ({} and '
                           '{}).'.format(name, KINDS[name].__qualname__,
                                         fn.__qualname__))
        KINDS[name] = fn
        return fn

    return register


def resolve_palette(palette, custom_color=None):
    """A 256-colour flat palette: ``palette``, else ``custom_color`` over the
    default colours, else the default colours."""
    if palette is not None:
        return flat_palette(palette)
    return get_color_map_list(256, custom_color)


def write_png(path, image):
    """Write an OpenCV (BGR or grey) image; encode, then write, so any path
    name works. Creates the folder."""
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    ok, buf = cv2.imencode('.png', image)
    if not ok:
        raise SegError("Could not encode the picture for '{}'.".format(path))
    buf.tofile(path)


def read_colour_image(path, shape):
    """The image file as BGR uint8, checked to be ``shape`` (H, W): the size
    of its prediction."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise DataError("Image '{}' cannot be read as a colour image."
                        .format(path))
    if image.shape[:2] != tuple(shape):
        raise DataError(
            "The prediction for '{}' is {}x{} (HxW) but the image is {}x{}; "
            'the transforms must record every resize and padding in '
            'trans_info.'.format(path, *shape, *image.shape[:2]))
    return image


@result_kind('pseudo_color_prediction')
def _pseudo_color(writer, image_path, pred, path, extras):
    """A palette PNG whose pixel values are the class ids."""
    save_palette_png(pred, path, writer.palette)


@result_kind('added_prediction')
def _added(writer, image_path, pred, path, extras):
    """The prediction's colours blended over the image."""
    image = read_colour_image(image_path, pred.shape)
    write_png(path, overlay(image, pred, writer.palette, bgr=True))


class ResultWriter:
    """Writes the chosen kinds of output for each image of a run.

    Args:
        save_dir (str): Output folder.
        image_dir (str, optional): Folder whose tree the output names mirror.
        palette (list, optional): ``[[r, g, b], ...]`` (the dataset's).
        custom_color (list[int], optional): Flat ``[r, g, b, ...]`` colours,
            used when ``palette`` is None.
        kinds (tuple[str]): Registered kinds to write (:data:`KINDS`), in
            order; the first one's path is what :meth:`write` returns first.

    Raises:
        SegError: an unknown kind.
    """

    def __init__(self, save_dir, image_dir=None, palette=None,
                 custom_color=None, kinds=DEFAULT_KINDS):
        unknown = [k for k in kinds if k not in KINDS]
        if unknown or not kinds:
            raise SegError('Unknown result kind(s) {}; choose from {}.'.format(
                unknown or '(none given)', ', '.join(sorted(KINDS))))
        self.save_dir = save_dir
        self.image_dir = image_dir
        self.palette = resolve_palette(palette, custom_color)
        self.kinds = tuple(kinds)

    def output_name(self, image_path):
        """``image_path`` relative to ``image_dir`` (or its base name), as
        ``.png``."""
        if self.image_dir:
            name = os.path.relpath(os.path.abspath(image_path),
                                   os.path.abspath(self.image_dir))
        else:
            name = os.path.basename(image_path)
        return os.path.splitext(name)[0] + '.png'

    def write(self, image_path, pred, **extras):
        """Write every kind for one image.

        Args:
            image_path (str): The image file.
            pred (np.ndarray): ``(H, W)`` class ids at the image's size.
            **extras: What some kinds need beyond the class ids (e.g. the
                attention maps of a multi-scale model).

        Returns:
            list[str]: The files written, one per kind, in ``kinds`` order.
        """
        pred = np.asarray(pred)
        name = self.output_name(image_path)
        paths = []
        for kind in self.kinds:
            path = os.path.join(self.save_dir, kind, name)
            KINDS[kind](self, image_path, pred, path, extras)
            paths.append(path)
        return paths
