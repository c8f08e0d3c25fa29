"""``unet``: the U-Net of the studies, trained from random initialisation.

Depth and width are parameters, so a study's base model and its one-level-deeper or
one-level-shallower variants are ``depth=`` settings of this one method.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plugins.methods.deep.semantic import SemanticMethod

if TYPE_CHECKING:
    from torch import nn


class UNet(SemanticMethod):
    """U-Net (Ronneberger et al. 2015); binary or multi-class head."""

    name = "unet"
    version = "3"  # 3: decoding chosen from the wider, size-relative grid
    description = (
        "U-Net (configurable depth/width), BCE/CE + soft Dice, random initialisation "
        "(no pretrained weights); instances by post-processing"
    )

    def __init__(
        self,
        depth: int = 4,
        width: int = 32,
        head: str = "auto",
        num_classes: int = 0,
        postprocess: str = "cc",
        dice_weight: float = 1.0,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        schedule: str = "cosine",
        batch_size: int = 8,
        patch_size: int = 224,
        augment: str = "default",
        validate_every: int = 0,
        tile: int = 1024,
        weights: str = "",
        encoding: str = "auto",
        rim: int = 0,
        scale: float = 0.0,
        tta: str = "rot90",
        steps: int = 0,
        select: str = "auto",
        polarity: str = "none",
    ) -> None:
        self.depth = depth
        self.width = width
        self.head = head
        self.num_classes = num_classes
        self.postprocess = postprocess
        self.dice_weight = dice_weight
        self.lr = lr
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.batch_size = batch_size
        self.patch_size = patch_size
        self.augment = augment
        self.validate_every = validate_every
        self.tile = tile
        self.weights = weights
        self.encoding = encoding
        self.rim = rim
        self.scale = scale
        self.tta = tta
        self.steps = steps
        self.select = select
        self.polarity = self.checked_polarity(polarity)
        self._check_head()

    def stride(self) -> int:
        return int(2**self.depth)

    def build(self, num_classes: int) -> nn.Module:
        from plugins.methods.deep.nets.unet import UNet as Net

        return Net(num_classes, depth=self.depth, width=self.width)
