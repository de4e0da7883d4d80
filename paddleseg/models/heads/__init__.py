from .fcn_head import FCNHead
from .rcca_head import RCCAModule
from .ocr_head import OCRHead
