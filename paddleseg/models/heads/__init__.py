from .acf_head import ACF_STYLES, ACFCoarseHead, ACFFineHead, ACFModule
from .fcn_head import FCNHead
from .rcca_head import RCCAModule
from .ocr_head import OCRHead
from .mscale_ocr_head import MscaleOCRHead, ScaleAttentionHead
