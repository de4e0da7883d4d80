from .cross_entropy_loss import CrossEntropyLoss
from .ohem_cross_entropy_loss import OhemCrossEntropyLoss
from .mixed_loss import MixedLoss
from .rmi_loss import RMILoss
from .lovasz_softmax_loss import LovaszSoftmaxLoss
from .lovasz_hinge_loss import LovaszHingeLoss
from .dice_loss import DiceLoss
from .bootstrapped_cross_entropy_loss import BootstrappedCrossEntropyLoss
