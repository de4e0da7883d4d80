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

Beyond PaddleSeg's two kinds, NVIDIA's dumps:

* ``submit``: Cityscapes label ids (not train ids), one single-channel PNG
  per image named after it, which the cityscapesScripts evaluator and the
  benchmark server read as they are (``--dump_for_submission``);
* ``assets``: for a model with ``dump_assets(x)``, one grey PNG per
  1-channel map (attention, in [0, 1]) and one palette PNG per K-channel map
  (logits), ``save_dir/assets/<name>_<asset>.png``; with the palette PNGs,
  the overlays (NVIDIA's ``composited_*``: the same 0.6 / 0.4 blend) and
  ``save_dir/index.html`` (:mod:`.results_page`) this is ``--dump_assets``.
"""

import os
import re

import cv2
import numpy as np

from paddleseg.datasets.cityscapes import (TRAIN_ID_TO_LABEL_ID,
                                           train_ids_to_label_ids)
from paddleseg.utils.errors import DataError, SegError
from paddleseg.utils.visualize import (flat_palette, get_color_map_list,
                                       overlay, save_palette_png)
from . import results_page

__all__ = ['ResultWriter', 'result_kind', 'resolve_palette', 'write_png',
           'asset_path', 'output_kinds', 'KINDS', 'DEFAULT_KINDS']

# name -> fn(writer, image_path, pred, path, extras): writes ``path``.
KINDS = {}
# What predict.py and infer.py write unless asked otherwise (PaddleSeg's).
DEFAULT_KINDS = ('pseudo_color_prediction', 'added_prediction')


def output_kinds(dump_for_submission=False, dump_assets=False):
    """The kinds the ``--dump_for_submission`` / ``--dump_assets`` flags of
    predict.py and infer.py ask for, on top of :data:`DEFAULT_KINDS`."""
    return DEFAULT_KINDS + (('submit', ) if dump_for_submission else ()) + (
        ('assets', ) if dump_assets else ())


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


@result_kind('submit')
def _submit(writer, image_path, pred, path, extras):
    """Cityscapes label ids, as the benchmark wants them."""
    if pred.size and pred.max() >= len(TRAIN_ID_TO_LABEL_ID):
        raise SegError(
            "The prediction for '{}' holds class {}; a Cityscapes submission "
            'needs a model of the {} train ids (a Cityscapes config).'.format(
                image_path, int(pred.max()), len(TRAIN_ID_TO_LABEL_ID)))
    write_png(path, train_ids_to_label_ids(pred))


def asset_path(path, name):
    """``<path without .png>_<name>.png``, ``name`` made file-name safe."""
    return '{}_{}.png'.format(path[:-len('.png')],
                              re.sub(r'[^\w.-]', '_', name))


@result_kind('assets')
def _assets(writer, image_path, pred, path, extras):
    """One PNG per map of ``extras['assets']`` (name -> (C, H, W) array)."""
    files = []
    for name, value in (extras.get('assets') or {}).items():
        value = np.asarray(value)
        out = asset_path(path, name)
        if value.ndim != 3 or value.shape[1:] != pred.shape:
            raise SegError(
                "Asset '{}' has shape {}; dump_assets must give (C, H, W) "
                'maps at the image size {}.'.format(name, value.shape,
                                                    pred.shape))
        if value.shape[0] == 1:  # attention: grey, 0..1 -> 0..255
            write_png(out, np.rint(np.clip(value[0], 0, 1) * 255).astype(
                np.uint8))
        else:  # logits: the class ids as a palette PNG
            save_palette_png(value.argmax(0).astype(np.uint8), out,
                             writer.palette)
        files.append(out)
    return files


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
        self.asset_names = []  # of the last image's assets, in order

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
            list[str]: The files written, in ``kinds`` order (one per kind;
            ``assets`` writes one per map).
        """
        pred = np.asarray(pred)
        name = self.output_name(image_path)
        paths = []
        for kind in self.kinds:
            path = os.path.join(self.save_dir, kind, name)
            files = KINDS[kind](self, image_path, pred, path, extras)
            paths.extend([path] if files is None else files)
        if 'assets' in extras:
            self.asset_names = list(extras['assets'] or {})
        return paths

    def write_page(self, image_paths):
        """Write ``save_dir/index.html``: per image its input, prediction,
        composite and assets side by side (relative links). Rows are made
        from the names alone, so one rank can write the page of a run
        whose images several ranks wrote.

        Returns:
            str: The page's path.
        """
        columns = [(label, kind) for label, kind in (
            ('prediction', 'pseudo_color_prediction'),
            ('composite', 'added_prediction')) if kind in self.kinds]
        assets = self.asset_names if 'assets' in self.kinds else []
        rows = []
        for image in image_paths:
            name = self.output_name(image)
            cells = [('input', image)] + [
                (label, os.path.join(self.save_dir, kind, name))
                for label, kind in columns]
            stem = os.path.join(self.save_dir, 'assets', name)
            cells += [(a, asset_path(stem, a)) for a in assets]
            rows.append((name[:-len('.png')], cells))
        return results_page.write_page(self.save_dir, rows)
