from .fcn_head import FCNHead
from .rcca_head import RCCAModule
