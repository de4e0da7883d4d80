from .layer_libs import (ConvBN, ConvBNAct, ConvBNReLU, ConvBNLeakyReLU,
                         AuxLayer, LeakyReLU, activation)
from .attention import CrissCrossAttention
from .resize import resize_bilinear, spatial_size
