"""Array operations behind the transforms: reading, resizing, padding,
flipping, photometric enhancement and label edges.

Images are HWC (or HW) arrays; labels are HW arrays of class ids. Every
function returns a new array and leaves its input unchanged.
"""

import os

import cv2
import numpy as np
from PIL import Image, ImageEnhance

from paddleseg.utils import logger
from paddleseg.utils.errors import DataError

__all__ = ['INTERPOLATIONS', 'MAX_PIXELS_ENV', 'max_pixels', 'read_image',
           'read_label', 'resize',
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


# Pixels an image or label may have before it is decoded (a small PNG can
# declare 20000x20000 pixels: 4.5 GiB once decoded). Cityscapes frames have
# 2 million, Mapillary's largest about 25 million.
MAX_PIXELS_ENV = 'PADDLESEG_MAX_IMAGE_PIXELS'
_DEFAULT_MAX_PIXELS = 2**27  # 134 million
# The limit is enforced here, before decoding, so PIL's own (a warning at
# 89 million pixels, an error at twice that) is switched off.
Image.MAX_IMAGE_PIXELS = None
# 16-bit images already reported as reduced to 8 bits (once per file).
_REPORTED_16BIT = set()


def max_pixels():
    """The pixel limit: ``$PADDLESEG_MAX_IMAGE_PIXELS``, else 2**27."""
    value = os.environ.get(MAX_PIXELS_ENV)
    if value is None:
        return _DEFAULT_MAX_PIXELS
    if not value.isdigit() or int(value) < 1:
        raise DataError('${} must be a positive number of pixels, got {!r}.'
                        .format(MAX_PIXELS_ENV, value))
    return int(value)


def _check_exists(path, what):
    if not os.path.isfile(path):
        raise DataError("{} file '{}' does not exist; check the path (and "
                        'dataset_root).'.format(what, path))


def _png_bit_depth(path):
    """The bit depth a PNG's header declares (None for other files)."""
    with open(path, 'rb') as f:
        head = f.read(25)
    if head[:8] == b'\x89PNG\r\n\x1a\n' and len(head) == 25:
        return head[24]
    return None


def _inspect(path, what):
    """Check a file before decoding it: it exists, is not empty, and its
    header declares at most :func:`max_pixels` pixels. Returns whether it
    holds more than 8 bits per channel.

    Raises:
        DataError: naming the file and what is wrong with it.
    """
    _check_exists(path, what)
    if os.path.getsize(path) == 0:
        raise DataError("{} file '{}' is empty (0 bytes); replace it or "
                        'remove it from the dataset.'.format(what, path))
    try:
        with Image.open(path) as im:  # reads the header only
            width, height = im.size
            mode = im.mode
    except (OSError, ValueError) as e:
        raise DataError("{} file '{}' cannot be decoded as an image ({}); "
                        'replace it or remove it from the dataset.'.format(
                            what, path, e)) from e
    limit = max_pixels()
    if width * height > limit:
        raise DataError(
            "{} file '{}' declares {}x{} pixels, more than the limit of {} "
            '(${}); raise the limit if the file is genuine.'.format(
                what, path, width, height, limit, MAX_PIXELS_ENV))
    return mode.startswith('I;16') or mode in ('I', 'F') or \
        _png_bit_depth(path) == 16


def read_image(path, channels=3, to_rgb=True):
    """Read an image file with OpenCV, after checking its header (an empty
    file, an undecodable one or one of more than :func:`max_pixels` pixels is
    a :class:`DataError` naming it; 16-bit images are reduced to 8 bits with
    a warning naming the file).

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
    deep = _inspect(path, 'Image')
    flag = {3: cv2.IMREAD_COLOR, 1: cv2.IMREAD_GRAYSCALE}.get(
        channels, cv2.IMREAD_UNCHANGED)
    if deep and flag != cv2.IMREAD_UNCHANGED and path not in _REPORTED_16BIT:
        _REPORTED_16BIT.add(path)
        logger.warning("Image '%s' has more than 8 bits per channel; it is "
                       'reduced to 8 bits (OpenCV divides by 256) as every '
                       'transform works on 8-bit images.', path)
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
        DataError: if the file is missing, empty, too large or cannot be
            decoded.
    """
    _inspect(path, 'Label')
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
