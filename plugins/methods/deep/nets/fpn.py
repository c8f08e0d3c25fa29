"""A feature pyramid on a timm encoder, shaped as torchvision's detection models expect.

torchvision's ``BackboneWithFPN`` takes a module whose named children give the levels (a
ResNet); a timm ``features_only`` encoder returns a list instead.  :class:`TimmFPN` takes the
encoder's features at strides 4, 8, 16 and 32, passes them through torchvision's
``FeaturePyramidNetwork`` with a max-pooled fifth level, and returns them keyed "0" … "pool"
with ``out_channels`` set, like ``BackboneWithFPN``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

#: The strides of the levels a Mask R-CNN's RoI poolers read (1/4 … 1/32).
STRIDES = (4, 8, 16, 32)


class TimmFPN(nn.Module):
    def __init__(self, encoder: str, out_channels: int = 256) -> None:
        super().__init__()
        import timm
        from torchvision.ops.feature_pyramid_network import (
            FeaturePyramidNetwork,
            LastLevelMaxPool,
        )

        if encoder not in timm.list_models():
            raise ValueError(f"timm has no encoder {encoder!r}")
        probe = timm.create_model(encoder, pretrained=False, features_only=True)
        reductions = list(probe.feature_info.reduction())  # type: ignore[union-attr, operator]
        missing = [s for s in STRIDES if s not in reductions]
        if missing:
            raise ValueError(
                f"encoder {encoder!r} has no features at stride {missing} "
                f"(it has {reductions}); a detection backbone needs strides 4, 8, 16 and 32"
            )
        indices = tuple(reductions.index(s) for s in STRIDES)
        self.body = timm.create_model(
            encoder, pretrained=False, features_only=True, out_indices=indices
        )
        channels = list(self.body.feature_info.channels())  # type: ignore[union-attr, operator]
        self.fpn = FeaturePyramidNetwork(channels, out_channels, extra_blocks=LastLevelMaxPool())
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.body(x)
        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(features)))  # type: ignore[no-any-return]
