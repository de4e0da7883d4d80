"""Array operations behind the transforms: reading, resizing, padding,
flipping, photometric enhancement and label edges.

Images are HWC (or HW) arrays; labels are HW arrays of class ids. Every
function returns a new array and leaves its input unchanged.
"""

import os

import cv2
import numpy as np
from PIL import Image, ImageEnhance

from paddleseg.utils.errors import DataError

__all__ = ['INTERPOLATIONS', 'read_image', 'read_label', 'resize',
           'resize_label', 'pad', 'crop', 'hflip', 'vflip', 'to_pil',
           'from_pil', 'enhance', 'shift_hue', 'mask_to_binary_edge']

INTERPOLATIONS = {
    'NEAREST': cv2.INTER_NEAREST,
    'LINEAR': cv2.INTER_LINEAR,
    'CUBIC': cv2.INTER_CUBIC,
    'AREA': cv2.INTER_AREA,
    'LANCZOS4': cv2.INTER_LANCZOS4,
}

# Label dtypes cv2 resizes natively; others go through int32.
_CV2_LABEL_DTYPES = (np.uint8, np.uint16, np.int16, np.int32)


def _check_exists(path, what):
    if not os.path.isfile(path):
        raise DataError("{} file '{}' does not exist; check the path (and "
                        'dataset_root).'.format(what, path))


def read_image(path, channels=3, to_rgb=True):
    """Read an image file with OpenCV.

    Args:
        path (str): Image file.
        channels (int): 3 reads colour, 1 reads grayscale, anything else
            reads the file unchanged.
        to_rgb (bool): Convert OpenCV's BGR order to RGB (3 channels only).

    Returns:
        np.ndarray: HWC uint8 (or the file's depth when unchanged); HW for
        grayscale.

    Raises:
        DataError: if the file is missing or cannot be decoded.
    """
    _check_exists(path, 'Image')
    flag = {3: cv2.IMREAD_COLOR, 1: cv2.IMREAD_GRAYSCALE}.get(
        channels, cv2.IMREAD_UNCHANGED)
    # imdecode(fromfile) also reads non-ASCII paths, which imread may not.
    img = cv2.imdecode(np.fromfile(path, dtype=np.uint8), flag)
    if img is None:
        raise DataError("Image file '{}' cannot be decoded as an image; "
                        'replace it or remove it from the dataset.'.format(path))
    if to_rgb and img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img


def read_label(path):
    """Read a label image with PIL, keeping the stored values (palette PNGs
    give their indices, not their colours).

    Raises:
        DataError: if the file is missing or cannot be decoded.
    """
    _check_exists(path, 'Label')
    try:
        with Image.open(path) as im:
            return np.array(im)
    except (OSError, ValueError) as e:
        raise DataError("Label file '{}' cannot be read ({}); replace it or "
                        'remove it from the dataset.'.format(path, e)) from e


def resize(img, size, interp=cv2.INTER_LINEAR):
    """Resize an image to ``size`` = (width, height), keeping a channel axis
    of length 1 (which cv2 drops)."""
    out = cv2.resize(img, (int(size[0]), int(size[1])), interpolation=interp)
    if img.ndim == 3 and out.ndim == 2:
        out = out[:, :, np.newaxis]
    return out


def resize_label(label, size):
    """Nearest-neighbour resize of a label map to ``size`` = (width, height).

    ``INTER_NEAREST_EXACT`` samples pixel centres like the bilinear image
    resize does, so labels stay aligned with the resized image (plain
    ``INTER_NEAREST`` is shifted by up to half a pixel when downscaling).
    """
    dtype = label.dtype
    work = label if dtype.type in _CV2_LABEL_DTYPES else label.astype(np.int32)
    out = resize(work, size, cv2.INTER_NEAREST_EXACT)
    return out.astype(dtype, copy=False)


def pad(arr, height, width, value):
    """Pad ``arr`` at the bottom and right to at least ``height`` x ``width``
    with the constant ``value``."""
    pad_h = max(int(height) - arr.shape[0], 0)
    pad_w = max(int(width) - arr.shape[1], 0)
    if pad_h == 0 and pad_w == 0:
        return arr.copy()
    widths = ((0, pad_h), (0, pad_w)) + ((0, 0), ) * (arr.ndim - 2)
    return np.pad(arr, widths, mode='constant', constant_values=value)


def crop(arr, top, left, height, width):
    """The ``height`` x ``width`` window at (``top``, ``left``), as a copy."""
    return arr[top:top + height, left:left + width].copy()


def hflip(arr):
    return np.ascontiguousarray(arr[:, ::-1])


def vflip(arr):
    return np.ascontiguousarray(arr[::-1])


def to_pil(img):
    """A float or uint8 HWC/HW array (values 0-255) as a PIL image; values
    are rounded and clipped to 0-255."""
    arr = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    return Image.fromarray(arr)


def from_pil(im, channels):
    """The PIL image as a float32 array with ``channels`` channels."""
    arr = np.asarray(im, dtype=np.float32)
    if arr.ndim == 2 and channels == 1:
        arr = arr[:, :, np.newaxis]
    return arr


_ENHANCERS = {
    'brightness': ImageEnhance.Brightness,
    'contrast': ImageEnhance.Contrast,
    'saturation': ImageEnhance.Color,
    'sharpness': ImageEnhance.Sharpness,
}


def enhance(im, kind, factor):
    """Apply PIL's ``kind`` enhancement (brightness, contrast, saturation,
    sharpness) with ``factor`` (1 keeps the image)."""
    return _ENHANCERS[kind](im).enhance(factor)


def shift_hue(im, delta):
    """Rotate the hue of an RGB PIL image by ``delta`` on PIL's 0-255 hue
    scale (wrapping around); other modes, and a delta of 0, return ``im``
    (PIL's HSV round trip is lossy by a few levels)."""
    if im.mode != 'RGB' or int(delta) % 256 == 0:
        return im
    hsv = np.array(im.convert('HSV'))
    hsv[:, :, 0] = (hsv[:, :, 0].astype(np.int32) + int(delta)) % 256
    return Image.frombytes('HSV', im.size, hsv.tobytes()).convert('RGB')


def mask_to_binary_edge(label, radius=2):
    """1 where a pixel is within ``radius`` of a pixel of another value,
    else 0 (int64, same shape as ``label``)."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                       (2 * radius + 1, 2 * radius + 1))
    lab = label.astype(np.float32)
    edge = cv2.dilate(lab, kernel) != cv2.erode(lab, kernel)
    return edge.astype(np.int64)
