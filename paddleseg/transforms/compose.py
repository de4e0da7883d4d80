"""Compose: read a sample's files, run the transforms, make the arrays the
model takes (CHW float32 image, int64 labels)."""

import numpy as np

from . import functional as F

__all__ = ['Compose']


class Compose:
    """Run transforms in order on a sample dict.

    A sample is ``{'img': path or HWC array, 'label': path or HW array
    (optional), 'gt_fields': [...], 'trans_info': [...]}``. Paths are read
    here (the image with OpenCV, the label with PIL); arrays are used as given,
    so an image array must already be in RGB order when ``to_rgb`` is set.
    Geometric transforms act on ``img`` and on every key in ``gt_fields``.

    Args:
        transforms (list): Callables ``t(data) -> data``.
        to_rgb (bool): Convert images read from files from BGR to RGB.
        img_channels (int): Channels of the images (3 colour, 1 grayscale).

    Raises:
        ValueError: if ``transforms`` is not a list of callables.
    """

    def __init__(self, transforms, to_rgb=True, img_channels=3):
        if not isinstance(transforms, (list, tuple)):
            raise ValueError('transforms must be a list of transforms, got {!r}.'
                             .format(transforms))
        for i, t in enumerate(transforms):
            if not callable(t):
                raise ValueError('transforms[{}] is {!r}, which is not a '
                                 'transform (not callable).'.format(i, t))
        if not isinstance(img_channels, int) or img_channels < 1:
            raise ValueError('img_channels must be a positive integer, got '
                             '{!r}.'.format(img_channels))
        self.transforms = list(transforms)
        self.to_rgb = bool(to_rgb)
        self.img_channels = img_channels

    def read_image(self, path):
        """Read an image file as this pipeline does (channels, RGB order)."""
        return F.read_image(path, self.img_channels, self.to_rgb)

    def __call__(self, data):
        """Transform ``data`` in place and return it.

        Returns:
            dict: ``img`` as CHW float32, ``label`` and every ``gt_fields``
            entry as int64, ``trans_info`` extended by the transforms.
        """
        if 'img' not in data:
            raise ValueError("The sample has no 'img' key; got keys {}."
                             .format(sorted(data)))
        data.setdefault('trans_info', [])
        data.setdefault('gt_fields', [])
        if isinstance(data['img'], str):
            data['img'] = self.read_image(data['img'])
        data['img'] = self._as_float_image(data['img'])
        if isinstance(data.get('label'), str):
            data['label'] = F.read_label(data['label'])
        for t in self.transforms:
            data = t(data)
        img = data['img']
        if img.ndim == 2:
            img = img[:, :, np.newaxis]
        data['img'] = np.ascontiguousarray(img.transpose(2, 0, 1),
                                           dtype=np.float32)
        for key in set(data['gt_fields']) | {'label'}:
            if data.get(key) is not None:
                data[key] = np.asarray(data[key]).astype(np.int64, copy=False)
        return data

    def _as_float_image(self, img):
        if not isinstance(img, np.ndarray):
            raise ValueError('The image must be a file path or a numpy array, '
                             'got {}.'.format(type(img).__name__))
        channels = 1 if img.ndim == 2 else img.shape[2]
        if img.ndim not in (2, 3) or channels != self.img_channels:
            raise ValueError('The image has shape {} but img_channels is {}; '
                             'set img_channels to match the data.'.format(
                                 img.shape, self.img_channels))
        return img.astype(np.float32)

    def __repr__(self):
        return 'Compose({})'.format(', '.join(
            type(t).__name__ for t in self.transforms))
