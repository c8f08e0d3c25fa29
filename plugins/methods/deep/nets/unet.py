"""The U-Net (Ronneberger et al., MICCAI 2015) with configurable depth and width.

Same-padded 3×3 convolutions with batch normalisation, so the output has the input's size
whenever that is a multiple of ``2**depth``; channels double at each of the ``depth``
down-sampling steps starting from ``width``; transposed-convolution up-sampling with skip
concatenation; a 1×1 head.
"""

from __future__ import annotations

import torch
from torch import nn


def double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    def __init__(
        self, out_channels: int, depth: int = 4, width: int = 32, in_channels: int = 3
    ) -> None:
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(
                f"U-Net needs depth >= 1 and width >= 1; got depth={depth}, width={width}"
            )
        channels = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList(
            [double_conv(in_channels, channels[0])]
            + [double_conv(channels[i], channels[i + 1]) for i in range(depth)]
        )
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(
            [nn.ConvTranspose2d(channels[i + 1], channels[i], 2, stride=2) for i in range(depth)]
        )
        self.merge = nn.ModuleList(
            [double_conv(2 * channels[i], channels[i]) for i in range(depth)]
        )
        self.head = nn.Conv2d(channels[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for i in reversed(range(len(self.up))):
            x = self.merge[i](torch.cat([skips[i], self.up[i](x)], dim=1))
        return self.head(x)  # type: ignore[no-any-return]
