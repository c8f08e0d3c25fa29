"""``segformer``: transformers' SegformerForSemanticSegmentation built from a SegformerConfig
(MiT-b0 size by default), trained from random initialisation; its 1/4-resolution logits are
up-sampled bilinearly to the input size."""

from __future__ import annotations

from typing import TYPE_CHECKING

from plugins.methods.deep.semantic import SemanticMethod

if TYPE_CHECKING:
    import torch
    from torch import nn


class SegFormer(SemanticMethod):
    """SegFormer (Xie et al., NeurIPS 2021); sizes of the Mix Transformer are parameters."""

    name = "segformer"
    version = "3"  # 3: decoding chosen from the wider, size-relative grid
    description = (
        "SegFormer (MiT-b0 size by default) from transformers, random initialisation "
        "(no pretrained weights); instances by post-processing"
    )
    needs = ("torch", "transformers")

    def __init__(
        self,
        hidden_sizes: tuple[int, ...] = (32, 64, 160, 256),
        depths: tuple[int, ...] = (2, 2, 2, 2),
        heads: tuple[int, ...] = (1, 2, 5, 8),
        decoder_hidden_size: int = 256,
        head: str = "auto",
        num_classes: int = 0,
        postprocess: str = "cc",
        dice_weight: float = 1.0,
        lr: float = 3e-4,
        weight_decay: float = 1e-2,
        schedule: str = "cosine",
        batch_size: int = 4,
        patch_size: int = 256,
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
        self.hidden_sizes = hidden_sizes
        self.depths = depths
        self.heads = heads
        self.decoder_hidden_size = decoder_hidden_size
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
        if not len(self.hidden_sizes) == len(self.depths) == len(self.heads) == 4:
            raise ValueError(
                "method 'segformer': hidden_sizes, depths and heads need 4 entries each"
            )

    def build(self, num_classes: int) -> nn.Module:
        from transformers import SegformerConfig, SegformerForSemanticSegmentation

        config = SegformerConfig(  # type: ignore[call-arg]
            num_labels=num_classes,
            hidden_sizes=list(self.hidden_sizes),
            depths=list(self.depths),
            num_attention_heads=list(self.heads),
            decoder_hidden_size=self.decoder_hidden_size,
        )
        return SegformerForSemanticSegmentation(config)

    def stride(self) -> int:
        return 32

    def forward(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        logits = model(pixel_values=x).logits
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
