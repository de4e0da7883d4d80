from .resnet_vd import (ResNet_vd, ResNet18_vd, ResNet34_vd, ResNet50_vd,
                        ResNet101_vd, ECAResNet50_vd, ECAResNet101_vd)
