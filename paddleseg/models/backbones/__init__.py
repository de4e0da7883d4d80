from .resnet_vd import (ResNet_vd, ResNet18_vd, ResNet34_vd, ResNet50_vd,
                        ResNet101_vd, ECAResNet50_vd, ECAResNet101_vd)
from .hrnet import (HRNet, HRNet_W18_Small_V1, HRNet_W18_Small_V2, HRNet_W18,
                    HRNet_W30, HRNet_W32, HRNet_W40, HRNet_W44, HRNet_W48,
                    HRNet_W60, HRNet_W64)
