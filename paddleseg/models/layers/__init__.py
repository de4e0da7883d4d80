from .layer_libs import (ConvBN, ConvBNAct, ConvBNReLU, ConvBNLeakyReLU,
                         AuxLayer, LeakyReLU, activation)
from .attention import CrissCrossAttention, export_cca_backend, set_cca_backend
from .resize import resize_bilinear, spatial_size
from .polarized_self_attention import PolarizedSelfAttentionModule
