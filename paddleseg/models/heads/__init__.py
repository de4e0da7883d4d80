from .fcn_head import FCNHead
