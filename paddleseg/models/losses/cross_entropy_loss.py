"""Pixel-wise softmax cross entropy with class weights and an ignore index."""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddleseg.cvlibs import manager

__all__ = ['CrossEntropyLoss', 'as_label']

_EPS = 1e-8


def as_label(label, logit):
    """Label as int64 (N, H, W); accepts (N, 1, H, W)."""
    if label.ndim == logit.ndim:
        label = label.squeeze(1)
    return label.astype('int64')


@manager.LOSSES.add_component
class CrossEntropyLoss(nn.Layer):
    """Cross entropy averaged over the pixels that are not ``ignore_index``.

    Args:
        weight (list[float], optional): Per-class weights; the average is
            then weighted (divided by the sum of the kept pixels' weights).
        ignore_index (int): Label value that contributes nothing.
        top_k_percent_pixels (float): Average only the hardest fraction of
            the pixels (1.0: all), as in PaddleSeg / DeepLab.
        data_format (str): 'NCHW' or 'NHWC' logits.
        avg_non_ignore (bool): Divide by the number of non-ignored pixels
            (True, PaddleSeg >= 2.5) or by all pixels.
    """

    def __init__(self, weight=None, ignore_index=255, top_k_percent_pixels=1.0,
                 data_format='NCHW', avg_non_ignore=True):
        super().__init__()
        if not 0.0 < top_k_percent_pixels <= 1.0:
            raise ValueError('top_k_percent_pixels must be in (0, 1], got {}.'
                             .format(top_k_percent_pixels))
        self.ignore_index = ignore_index
        self.top_k_percent_pixels = top_k_percent_pixels
        self.data_format = data_format
        self.avg_non_ignore = avg_non_ignore
        self.weight = None
        if weight is not None:
            self.weight = paddle.to_tensor(weight, dtype='float32')

    def forward(self, logit, label):
        if self.data_format == 'NCHW':
            logit = logit.transpose([0, 2, 3, 1])
        label = as_label(label, logit.transpose([0, 3, 1, 2]))
        num_classes = logit.shape[-1]
        if self.weight is not None and self.weight.shape[0] != num_classes:
            raise ValueError('CrossEntropyLoss.weight has {} values but the '
                             'logits have {} classes.'.format(
                                 self.weight.shape[0], num_classes))
        mask = (label != self.ignore_index)
        safe = paddle.where(mask, label, paddle.zeros_like(label))
        loss = F.cross_entropy(logit.astype('float32'), safe.unsqueeze(-1),
                               reduction='none', axis=-1).squeeze(-1)
        pixel_weight = mask.astype('float32')
        if self.weight is not None:
            pixel_weight = pixel_weight * paddle.gather(
                self.weight, safe.flatten()).reshape(safe.shape)
        loss = loss * pixel_weight
        if self.top_k_percent_pixels < 1.0:
            flat = loss.flatten()
            k = max(1, int(self.top_k_percent_pixels * flat.shape[0]))
            return paddle.topk(flat, k)[0].mean()
        if self.avg_non_ignore:
            return loss.sum() / (pixel_weight.sum() + _EPS)
        return loss.mean()
