from .layer_libs import (ConvBN, ConvBNAct, ConvBNReLU, ConvBNLeakyReLU,
                         AuxLayer, LeakyReLU, activation, init_conv_bn)
from .attention import CrissCrossAttention, export_cca_backend, set_cca_backend
from .aspp import ASPPModule
from .class_attention import (class_attention, class_centers,
                              reference_class_attention)
from .eca import ECALayer
from .resize import resize_bilinear, resize_by_factor, spatial_size
from .polarized_self_attention import PolarizedSelfAttentionModule
