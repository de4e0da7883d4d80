"""The two heads of MscaleOCRNet (Tao et al., "Hierarchical Multi-Scale
Attention for Semantic Segmentation", arXiv 2005.10821), in PaddleSeg 2.8's
form and with its parameter names (``paddleseg/models/mscale_ocrnet.py``
there):

- :class:`MscaleOCRHead`, the object-contextual head as NVIDIA's
  ``OCR_block`` has it (PaddleSeg's ``OCRHead`` of that file). It computes
  what OCRNet's head (``ocr_head.py``) computes, with other names
  (``ocr_gather_head``, ``ocr_distri_head``, ``conv_bn_relu_1/2``,
  ``conv_bn_dropout``), bias-free 1x1 convs in the attention, dropout 0.05,
  and it also returns the 512-channel representation the classifier sees;
- :class:`ScaleAttentionHead` (PaddleSeg's ``AttenHead``): from that
  representation, a per-pixel weight in [0, 1] for the prediction of the
  scale it was computed at.
"""

import paddle
import paddle.nn as nn

from ..layers import ConvBNReLU, init_conv_bn, spatial_size
from .ocr_head import SpatialGatherBlock, object_context

__all__ = ['MscaleOCRHead', 'ScaleAttentionHead']


class MscaleOCRHead(nn.Layer):
    """Args:
        num_classes (int): K, the number of classes (and of soft regions).
        in_channels (list): Channels of the features the head takes: one
            (regions and pixels from the same feature; HRNet) or two
            (regions from the first, pixels from the second).
        ocr_mid_channels (int): Channels of the pixel and region
            representations (512; the attention head expects them).
        ocr_key_channels (int): Channels of the attention's queries and keys.
        dropout_rate (float): 2-D dropout after the fusion (0.05).
        conv_init (str): ``'normal'`` (PaddleSeg's) or ``'kaiming'`` (for
            training from scratch), see :func:`..layers.init_conv_bn`.

    ``forward(feats)`` returns ``(logit, soft_regions, representation)`` at
    the features' resolution.
    """

    def __init__(self, num_classes, in_channels, ocr_mid_channels=512,
                 ocr_key_channels=256, dropout_rate=0.05,
                 conv_init='normal'):
        super().__init__()
        self.indices = [-2, -1] if len(in_channels) > 1 else [-1, -1]
        shallow, deep = (in_channels[i] for i in self.indices)
        self.conv3x3_ocr = ConvBNReLU(deep, ocr_mid_channels, 3, padding=1)
        self.ocr_gather_head = SpatialGatherBlock(ocr_mid_channels,
                                                  num_classes)
        self.ocr_distri_head = DistributedContextBlock(
            ocr_mid_channels, ocr_key_channels, ocr_mid_channels,
            dropout_rate)
        self.cls_head = nn.Conv2D(ocr_mid_channels, num_classes, 1)
        self.aux_head = nn.Sequential(ConvBNReLU(shallow, shallow, 1),
                                      nn.Conv2D(shallow, num_classes, 1))
        init_conv_bn(self, conv_init)

    def forward(self, feats):
        shallow, deep = (feats[i] for i in self.indices)
        pixels = self.conv3x3_ocr(deep)
        soft_regions = self.aux_head(shallow)
        regions = self.ocr_gather_head(pixels, soft_regions)
        representation = self.ocr_distri_head(pixels, regions)
        return self.cls_head(representation), soft_regions, representation


class SpatialConvBNReLU(nn.Layer):
    """Two bias-free 1x1 ConvBNReLUs (``conv_bn_relu_1``, ``conv_bn_relu_2``):
    the query and key transforms."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv_bn_relu_1 = ConvBNReLU(in_channels, out_channels, 1,
                                         bias_attr=False)
        self.conv_bn_relu_2 = ConvBNReLU(out_channels, out_channels, 1,
                                         bias_attr=False)

    def forward(self, x):
        return self.conv_bn_relu_2(self.conv_bn_relu_1(x))


class DistributedContextBlock(nn.Layer):
    """Pixels (queries, ``f_pixel``) attend to the regions (keys
    ``f_object``, values ``f_down``); the context, projected back
    (``f_up``), is concatenated with the pixels and fused by a 1x1
    ConvBNReLU + 2-D dropout (``conv_bn_dropout``). All convs bias-free
    (PaddleSeg's ``SpatialOCRModule`` of its MscaleOCRNet)."""

    def __init__(self, in_channels, key_channels, out_channels,
                 dropout_rate=0.05):
        super().__init__()
        self.in_channels = in_channels
        self.key_channels = key_channels
        self.f_pixel = SpatialConvBNReLU(in_channels, key_channels)
        self.f_object = SpatialConvBNReLU(in_channels, key_channels)
        self.f_down = ConvBNReLU(in_channels, key_channels, 1,
                                 bias_attr=False)
        self.f_up = ConvBNReLU(key_channels, in_channels, 1, bias_attr=False)
        self.conv_bn_dropout = nn.Sequential(
            ConvBNReLU(2 * in_channels, out_channels, 1, bias_attr=False),
            nn.Dropout2D(dropout_rate))

    def forward(self, pixels, regions):
        context = object_context(self.f_pixel(pixels), self.f_object(regions),
                                 self.f_down(regions), spatial_size(pixels))
        return self.conv_bn_dropout(paddle.concat(
            [self.f_up(context), pixels], axis=1))


class ScaleAttentionHead(nn.Layer):
    """Two bias-free 3x3 ConvBNReLUs (``conv_bn_re0``, ``conv_bn_re1``), a
    bias-free 1x1 conv to one channel (``conv2``) and a sigmoid (``sig``):
    the weight (N, 1, H, W) in [0, 1] of a scale's prediction. NVIDIA's
    ``make_attn_head`` with its defaults (256 bottleneck channels, the inner
    3x3, no dropout); Paddle's default initialisation, as in PaddleSeg.

    Args:
        in_channels (int): Channels of the OCR representation (512).
        out_channels (int): Attention maps (1).
        bottleneck_channels (int): Channels of the two 3x3 convs (256).
    """

    def __init__(self, in_channels=512, out_channels=1,
                 bottleneck_channels=256):
        super().__init__()
        self.conv_bn_re0 = ConvBNReLU(in_channels, bottleneck_channels, 3,
                                      padding=1, bias_attr=False)
        self.conv_bn_re1 = ConvBNReLU(bottleneck_channels,
                                      bottleneck_channels, 3, padding=1,
                                      bias_attr=False)
        self.conv2 = nn.Conv2D(bottleneck_channels, out_channels, 1,
                               bias_attr=False)
        self.sig = nn.Sigmoid()

    def forward(self, x):
        return self.sig(self.conv2(self.conv_bn_re1(self.conv_bn_re0(x))))
