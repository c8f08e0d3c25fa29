"""Deep-learning methods: U-Net, U-Net++, SegFormer, FCN-ResNet50 and Mask R-CNN.

They share one training engine (:mod:`plugins.methods.deep.engine`).  This module and the
method classes import without PyTorch, so a light installation still lists them; running one
then says what to install.
"""

from __future__ import annotations

from harness import hookimpl
from plugins.methods.deep.fcn import FCNResNet50
from plugins.methods.deep.mask_rcnn import MaskRCNN
from plugins.methods.deep.segformer import SegFormer
from plugins.methods.deep.unet import UNet
from plugins.methods.deep.unet_plus_plus import UNetPlusPlus

METHODS = (UNet, UNetPlusPlus, SegFormer, FCNResNet50, MaskRCNN)


@hookimpl
def bench_register_methods(register):  # type: ignore[no-untyped-def]
    for method in METHODS:
        register(method)
