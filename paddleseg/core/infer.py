"""Inference on one batch of images: whole image, sliding window, and
test-time augmentation (scales and flips, combined as PaddleSeg 2.8 does by
default: the mean of the views' logits), mapped back to the original size.

Evaluation transforms record what they did in ``trans_info``, a list of
``('resize', (h, w))`` / ``('padding', (h, w))`` entries, each holding the
size *before* that op. :func:`reverse_transform` walks the list backwards to
bring a prediction back to the size of the label on disk.
"""

import functools
import math
import numbers

import paddle
import paddle.nn.functional as F

from paddleseg.utils.errors import ConfigError

__all__ = ['reverse_transform', 'slide_inference', 'inference',
           'aug_inference', 'build_infer_fn', 'to_probabilities',
           'AUG_COMBINE']

# How test-time augmentation combines its views (see aug_inference).
AUG_COMBINE = ('logits', 'probs')


def _size_of(entry):
    """``(op, (h, w))`` of one ``trans_info`` entry.

    Entries may have gone through a DataLoader's collation, which turns the
    size into a list and its numbers into tensors.
    """
    op, size = entry[0], entry[1]
    h, w = (int(s.item()) if hasattr(s, 'item') else int(s) for s in size)
    return op, h, w


def _resize(x, h, w, mode):
    """Resize an NCHW tensor; ``nearest`` also works on integer tensors."""
    if tuple(x.shape[-2:]) == (h, w):
        return x
    if mode == 'nearest':
        dtype = x.dtype
        out = F.interpolate(x.astype('float32'), size=[h, w], mode='nearest')
        return out.astype(dtype)
    return F.interpolate(x, size=[h, w], mode=mode, align_corners=False)


def reverse_transform(pred, trans_info, mode='nearest'):
    """Undo the recorded resizes and paddings, last first.

    Args:
        pred (paddle.Tensor): ``(N, C, H, W)`` logits or ids.
        trans_info (list): ``[('resize'|'padding', (h, w)), ...]``.
        mode (str): Interpolation for resizes ('nearest' for ids, 'bilinear'
            for logits).

    Returns:
        paddle.Tensor: ``pred`` at the size before the first transform.

    Raises:
        ValueError: for an op other than 'resize' or 'padding'.
    """
    for entry in reversed(list(trans_info or [])):
        op, h, w = _size_of(entry)
        if op == 'resize':
            pred = _resize(pred, h, w, mode)
        elif op == 'padding':
            # Padding adds rows and columns at the bottom and right.
            pred = pred[:, :, :h, :w]
        else:
            raise ValueError("Unknown trans_info op {!r}; expected 'resize' "
                             "or 'padding'.".format(op))
    return pred


def _main_logit(model, im):
    """The model's main output; a model may return a list or one tensor."""
    out = model(im)
    return out[0] if isinstance(out, (list, tuple)) else out


def _pair(value, name):
    """``(w, h)`` positive ints from a pair (or one int)."""
    if isinstance(value, numbers.Integral):
        value = (value, value)
    try:
        w, h = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError('test_config.{} must be [width, height], got {!r}.'
                          .format(name, value)) from None
    if w < 1 or h < 1:
        raise ConfigError('test_config.{} must be positive, got {!r}.'.format(
            name, value))
    return w, h


def _window_starts(size, crop, stride):
    """Start offsets of windows of ``crop`` every ``stride`` over ``size``;
    the last window ends at the border so every pixel is covered."""
    if size <= crop:
        return [0]
    steps = int(math.ceil((size - crop) / stride))
    return [min(i * stride, size - crop) for i in range(steps + 1)]


def slide_inference(model, im, crop_size, stride):
    """Sliding-window inference: average the logits of overlapping windows.

    Only one window's activations exist at a time, so memory is bounded by
    the crop size plus the ``(N, C, H, W)`` sum. An image smaller than the
    crop is run whole.

    Args:
        model (paddle.nn.Layer): Returns a list of logits.
        im (paddle.Tensor): ``(N, 3, H, W)``.
        crop_size (tuple): Window ``(w, h)``.
        stride (tuple): Step ``(w, h)``, at most the window size.

    Returns:
        paddle.Tensor: ``(N, C, H, W)`` logits.

    Raises:
        ConfigError: for a bad window size or stride.
    """
    crop_w, crop_h = _pair(crop_size, 'crop_size')
    stride_w, stride_h = _pair(stride, 'stride')
    if stride_w > crop_w or stride_h > crop_h:
        raise ConfigError(
            'test_config.stride {} is larger than crop_size {}, which would '
            'leave pixels unpredicted; use a stride at most the crop size.'
            .format([stride_w, stride_h], [crop_w, crop_h]))
    h, w = im.shape[-2:]
    total, count = None, paddle.zeros([1, 1, h, w], dtype='float32')
    for y in _window_starts(h, crop_h, stride_h):
        for x in _window_starts(w, crop_w, stride_w):
            y1, x1 = min(y + crop_h, h), min(x + crop_w, w)
            logit = _main_logit(model, im[:, :, y:y1, x:x1])
            logit = _resize(logit, y1 - y, x1 - x, 'bilinear')
            if total is None:
                total = paddle.zeros([im.shape[0], logit.shape[1], h, w],
                                     dtype=logit.dtype)
            total[:, :, y:y1, x:x1] += logit
            count[:, :, y:y1, x:x1] += 1
    return total / count.astype(total.dtype)


def inference(model, im, trans_info=None, is_slide=False, stride=None,
              crop_size=None):
    """Logits of ``im`` at the original image size.

    Args:
        model (paddle.nn.Layer): In eval mode; returns a list of logits.
        im (paddle.Tensor): ``(N, 3, H, W)`` transformed images.
        trans_info (list|None): If given, the logits are mapped back to the
            size before the transforms (bilinear).
        is_slide (bool): Use :func:`slide_inference`.
        stride (tuple): Sliding-window step ``(w, h)``.
        crop_size (tuple): Sliding-window size ``(w, h)``.

    Returns:
        paddle.Tensor: ``(N, C, H', W')`` logits; ``(H', W') = (H, W)`` when
        ``trans_info`` is None.
    """
    if is_slide:
        if crop_size is None or stride is None:
            raise ConfigError('Sliding-window inference needs both crop_size '
                              'and stride, got crop_size={!r}, stride={!r}.'
                              .format(crop_size, stride))
        logit = slide_inference(model, im, crop_size, stride)
    else:
        logit = _main_logit(model, im)
        logit = _resize(logit, im.shape[-2], im.shape[-1], 'bilinear')
    if trans_info:
        logit = reverse_transform(logit, trans_info, mode='bilinear')
    return logit


def _flips(flip_horizontal, flip_vertical):
    """Axes to flip for each augmented view; ``[]`` is the plain view."""
    views = [[]]
    if flip_horizontal:
        views.append([3])
    if flip_vertical:
        views.append([2])
    if flip_horizontal and flip_vertical:
        views.append([2, 3])
    return views


def aug_inference(model, im, trans_info, scales=1.0, flip_horizontal=False,
                  flip_vertical=False, is_slide=False, stride=None,
                  crop_size=None, combine='logits'):
    """Test-time augmentation: every scale, plain and flipped as asked.

    Each view's logits are flipped back and resized to the input size, then
    combined as ``combine`` says:

    * ``'logits'`` (the default, PaddleSeg 2.8 and later): their mean;
    * ``'probs'`` (PaddleSeg up to 2.7): the sum of their softmax
      probabilities.

    Every scale is resized from the input itself (PaddleSeg up to 2.7
    resized each scale from the previous scale's image; that is not
    reproduced).

    Args:
        model (paddle.nn.Layer): In eval mode; returns a list of logits.
        im (paddle.Tensor): ``(N, 3, H, W)`` transformed images.
        trans_info (list|None): Mapped back as in :func:`inference`.
        scales (float|list[float]): Resize factors of the input.
        flip_horizontal (bool): Add horizontally flipped views.
        flip_vertical (bool): Add vertically flipped views.
        is_slide, stride, crop_size: As in :func:`inference`.
        combine (str): ``'logits'`` or ``'probs'`` (see above).

    Returns:
        paddle.Tensor: ``(N, C, H', W')`` mean logits or summed
        probabilities.

    Raises:
        ConfigError: for scales that are not positive or an unknown
            ``combine``.
    """
    scales = [scales] if isinstance(scales, numbers.Number) else list(scales)
    if not scales or any(s <= 0 for s in scales):
        raise ConfigError('test_config.scales must be positive numbers, got '
                          '{!r}.'.format(scales))
    _check_combine(combine)
    h, w = im.shape[-2:]
    total, views = None, 0
    for scale in scales:
        size = (int(h * scale + 0.5), int(w * scale + 0.5))
        scaled = _resize(im, size[0], size[1], 'bilinear')
        for axes in _flips(flip_horizontal, flip_vertical):
            view = paddle.flip(scaled, axes) if axes else scaled
            logit = inference(model, view, is_slide=is_slide, stride=stride,
                              crop_size=crop_size)
            if axes:
                logit = paddle.flip(logit, axes)
            score = _resize(logit, h, w, 'bilinear')
            if combine == 'probs':
                score = F.softmax(score, axis=1)
            total = score if total is None else total + score
            views += 1
    if combine == 'logits':
        total = total / views
    if trans_info:
        total = reverse_transform(total, trans_info, mode='bilinear')
    return total


def _check_combine(combine):
    if combine not in AUG_COMBINE:
        raise ConfigError(
            "test_config.aug_combine (--aug_combine) must be 'logits' (the "
            "mean of the views' logits, PaddleSeg 2.8) or 'probs' (the sum of "
            "their probabilities, PaddleSeg up to 2.7), got {!r}.".format(
                combine))


def to_probabilities(scores, kind):
    """Class probabilities ``(N, C, H, W)`` from what an inference function
    returned: softmax of logits, or summed probabilities normalised."""
    if kind == 'probs':
        return scores / scores.sum(axis=1, keepdim=True)
    return F.softmax(scores, axis=1)


def build_infer_fn(aug=False, scales=1.0, flip_horizontal=False,
                   flip_vertical=False, is_slide=False, stride=None,
                   crop_size=None, aug_combine='logits'):
    """``fn(model, im, trans_info) -> (N, C, H, W)`` scores with the given
    options: :func:`aug_inference` when ``aug``, else :func:`inference`.
    ``fn.kind`` says what the scores are (``'logits'`` or ``'probs'``, for
    :func:`to_probabilities`)."""
    common = dict(is_slide=is_slide, stride=stride, crop_size=crop_size)
    if aug:
        _check_combine(aug_combine)
        fn = functools.partial(aug_inference, scales=scales,
                               flip_horizontal=flip_horizontal,
                               flip_vertical=flip_vertical,
                               combine=aug_combine, **common)
        fn.kind = aug_combine
        return fn
    fn = functools.partial(inference, **common)
    fn.kind = 'logits'
    return fn
