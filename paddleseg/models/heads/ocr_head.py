"""The object-contextual representation head of OCRNet (Yuan et al., ECCV
2020), in PaddleSeg 2.8's form and with its parameter names.

1. Soft object regions: a 1x1 ConvBNReLU + 1x1 classifier (``aux_head``) on
   the shallow feature gives K class maps; they are also the auxiliary
   output.
2. Pixel representations: a 3x3 ConvBNReLU (``conv3x3_ocr``) on the deep
   feature.
3. Spatial gather: each region's representation is the average of the pixel
   representations weighted by the region's softmax over all pixels.
4. Object attention (``spatial_ocr``): every pixel attends to the K region
   representations; the context is concatenated with the pixel's own
   representation, fused by a 1x1 ConvBNReLU and classified (``cls_head``).

Every product is a batched matmul over (N, C, HW) views, no einsum, so the
head exports and runs under oneDNN.
"""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..layers import ConvBNReLU, init_conv_bn, spatial_size

__all__ = ['OCRHead', 'SpatialGatherBlock', 'object_context']


class OCRHead(nn.Layer):
    """Args:
        num_classes (int): K, the number of classes (and of soft regions).
        in_channels (list): Channels of the features the head takes: one
            (regions and pixels from the same feature) or two (regions from
            the first, pixels from the second).
        ocr_mid_channels (int): Channels of the pixel and region
            representations.
        ocr_key_channels (int): Channels of the attention's queries and keys.
        conv_init (str): ``'normal'`` (PaddleSeg's) or ``'kaiming'``, see
            :func:`layers.init_conv_bn`.

    ``forward(feats)`` returns ``[logit, soft_regions]`` at the features'
    resolution.
    """

    def __init__(self, num_classes, in_channels, ocr_mid_channels=512,
                 ocr_key_channels=256, conv_init='normal'):
        super().__init__()
        self.indices = [-2, -1] if len(in_channels) > 1 else [-1, -1]
        shallow, deep = (in_channels[i] for i in self.indices)
        self.spatial_gather = SpatialGatherBlock(ocr_mid_channels,
                                                 num_classes)
        self.spatial_ocr = SpatialOCRModule(ocr_mid_channels,
                                            ocr_key_channels,
                                            ocr_mid_channels)
        self.conv3x3_ocr = ConvBNReLU(deep, ocr_mid_channels, 3, padding=1)
        self.cls_head = nn.Conv2D(ocr_mid_channels, num_classes, 1)
        self.aux_head = nn.Sequential(ConvBNReLU(shallow, shallow, 1),
                                      nn.Conv2D(shallow, num_classes, 1))
        init_conv_bn(self, conv_init)

    def forward(self, feats):
        shallow, deep = (feats[i] for i in self.indices)
        soft_regions = self.aux_head(shallow)
        pixels = self.conv3x3_ocr(deep)
        regions = self.spatial_gather(pixels, soft_regions)
        logit = self.cls_head(self.spatial_ocr(pixels, regions))
        return [logit, soft_regions]


def object_context(query, key, value, size):
    """Each pixel's mix of the region values: softmax over the K regions of
    ``q . k / sqrt(Ck)``, applied to ``value``.

    Args:
        query (Tensor): (N, Ck, H, W) pixel queries.
        key, value (Tensor): (N, Ck, K, 1) region keys and values.
        size (list): (H, W) of ``query`` (``spatial_size``).

    Returns:
        Tensor: (N, Ck, H, W).
    """
    channels = query.shape[1]
    sim = paddle.matmul(query.flatten(2), key.flatten(2),
                        transpose_x=True)                      # N, HW, K
    sim = F.softmax(sim * (channels ** -0.5), axis=-1)
    context = paddle.matmul(value.flatten(2), sim,
                            transpose_y=True)                  # N, Ck, HW
    return paddle.reshape(context, [0, channels, size[0], size[1]])


class SpatialGatherBlock(nn.Layer):
    """(N, C, K, 1) region representations: the pixels (N, C, H, W) averaged
    with each region's softmax over the pixels (N, K, H, W) as weights. No
    parameters."""

    def __init__(self, pixels_channels, regions_channels):
        super().__init__()
        self.pixels_channels = pixels_channels
        self.regions_channels = regions_channels

    def forward(self, pixels, regions):
        weights = F.softmax(regions.flatten(2), axis=2)            # N, K, HW
        feats = paddle.matmul(weights, pixels.flatten(2),
                              transpose_y=True)                    # N, K, C
        return feats.transpose([0, 2, 1]).unsqueeze(-1)


class SpatialOCRModule(nn.Layer):
    """Object attention, then ``concat[context, pixels]`` fused by a 1x1
    ConvBNReLU and 2-D dropout (``conv1x1``)."""

    def __init__(self, in_channels, key_channels, out_channels,
                 dropout_rate=0.1):
        super().__init__()
        self.attention_block = ObjectAttentionBlock(in_channels, key_channels)
        self.conv1x1 = nn.Sequential(
            ConvBNReLU(2 * in_channels, out_channels, 1),
            nn.Dropout2D(dropout_rate))

    def forward(self, pixels, regions):
        context = self.attention_block(pixels, regions)
        return self.conv1x1(paddle.concat([context, pixels], axis=1))


def _two_conv(in_channels, key_channels):
    """Two 1x1 ConvBNReLUs, the query and key transforms (``f_pixel``,
    ``f_object``)."""
    return nn.Sequential(ConvBNReLU(in_channels, key_channels, 1),
                         ConvBNReLU(key_channels, key_channels, 1))


class ObjectAttentionBlock(nn.Layer):
    """Pixels (queries, ``f_pixel``) attend to the regions (keys
    ``f_object``, values ``f_down``): softmax(q k / sqrt(key_channels)) v,
    projected back to the pixels' channels (``f_up``)."""

    def __init__(self, in_channels, key_channels):
        super().__init__()
        self.in_channels = in_channels
        self.key_channels = key_channels
        self.f_pixel = _two_conv(in_channels, key_channels)
        self.f_object = _two_conv(in_channels, key_channels)
        self.f_down = ConvBNReLU(in_channels, key_channels, 1)
        self.f_up = ConvBNReLU(key_channels, in_channels, 1)

    def forward(self, x, proxy):
        context = object_context(self.f_pixel(x), self.f_object(proxy),
                                 self.f_down(proxy), spatial_size(x))
        return self.f_up(context)
