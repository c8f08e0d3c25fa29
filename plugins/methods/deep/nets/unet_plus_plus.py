"""U-Net++ (Zhou et al., DLMIA 2018): nested, densely skip-connected decoder on the feature
pyramid of a timm encoder (``features_only``).

Node X[i][j] (level i, column j) convolves the concatenation of X[i][0..j-1] and the
up-sampled X[i+1][j-1]; X[i][0] are the encoder's features.  The last node of level 0 is
up-sampled to the input resolution and mapped to logits by a 1×1 head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from plugins.methods.deep.nets.unet import double_conv


class UNetPlusPlus(nn.Module):
    def __init__(self, encoder: nn.Module, out_channels: int, decoder_width: int = 32) -> None:
        super().__init__()
        self.encoder = encoder
        feature_channels = list(encoder.feature_info.channels())  # type: ignore[union-attr, operator]
        reductions = list(encoder.feature_info.reduction())  # type: ignore[union-attr, operator]
        self.input_reduction = reductions[0]
        levels = len(feature_channels)
        width = [decoder_width * 2 ** min(i, 3) for i in range(levels)]
        self.nodes = nn.ModuleDict()
        for j in range(1, levels):
            for i in range(levels - j):
                below = feature_channels[i + 1] if j == 1 else width[i + 1]
                same = feature_channels[i] + (j - 1) * width[i]
                self.nodes[f"{i}_{j}"] = double_conv(same + below, width[i])
        self.head = nn.Conv2d(width[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        features = self.encoder(x)
        grid: dict[tuple[int, int], torch.Tensor] = {(i, 0): f for i, f in enumerate(features)}
        levels = len(features)
        for j in range(1, levels):
            for i in range(levels - j):
                below = F.interpolate(
                    grid[(i + 1, j - 1)], size=grid[(i, 0)].shape[-2:], mode="nearest"
                )
                same = [grid[(i, k)] for k in range(j)]
                grid[(i, j)] = self.nodes[f"{i}_{j}"](torch.cat([*same, below], dim=1))
        out = self.head(grid[(0, levels - 1)])
        if out.shape[-2:] != size:
            out = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
        return out
