from .layer_libs import (ConvBN, ConvBNAct, ConvBNReLU, ConvBNLeakyReLU,
                         AuxLayer, activation)
from .attention import CrissCrossAttention
