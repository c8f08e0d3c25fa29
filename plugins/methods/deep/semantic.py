"""Semantic deep methods: a network giving per-pixel logits, trained with (B)CE + soft Dice,
reaching instances through the shared post-processing step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from harness import Dataset, Prediction, Sample
from plugins.methods.deep.base import DeepMethod
from plugins.methods.deep.data import Target
from plugins.methods.postprocess import PostProcess, postprocess

if TYPE_CHECKING:
    import torch
    from torch import nn

    from plugins.methods.deep.augment import Patch

#: Parameters of every semantic method, beyond the training ones.
SEMANTIC_PARAMS = ("head", "num_classes", "postprocess", "dice_weight")


class SemanticMethod(DeepMethod):
    """Per-pixel logits → foreground probability (and classes) → post-processed instances.

    ``head``: ``binary`` (one sigmoid output: foreground), ``classes`` (softmax over the
    dataset's classes, 0 = background) or ``auto`` (classes when every training sample has a
    class map).  ``num_classes`` fixes the class count (0: max class id in training + 1).
    """

    outputs = frozenset({"foreground", "instances"})
    head: str
    num_classes: int
    postprocess: str
    dice_weight: float
    tile: int
    batch_size: int

    default_head: ClassVar[str] = "auto"

    def _check_head(self) -> None:
        if self.head not in ("auto", "binary", "classes"):
            raise ValueError(
                f"method {self.name!r}: head must be auto, binary or classes; got {self.head!r}"
            )
        PostProcess.named(self.postprocess)
        if self.head == "classes":
            self.outputs = frozenset({"foreground", "instances", "classes"})  # type: ignore[misc]

    def not_applicable(self, dataset: Dataset) -> str | None:
        if self.head == "classes" and "classes" not in dataset.provides:
            return f"method {self.name!r} with head='classes' needs class maps; {dataset.name!r} has none"
        return super().not_applicable(dataset)

    def _uses_classes(self, train: Sequence[Sample]) -> bool:
        if self.head == "auto":
            return bool(train) and all(s.classes is not None for s in train)
        return self.head == "classes"

    def output_classes(self, train: Sequence[Sample]) -> int:
        if not self._uses_classes(train):
            return 1
        if self.num_classes:
            return max(2, self.num_classes)
        return max(2, 1 + max(int(np.max(s.classes)) for s in train if s.classes is not None))

    @property
    def target(self) -> Target:  # type: ignore[override]
        return "classes" if self.num_classes_ > 1 else "foreground"

    def forward(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Logits N×C×H×W at the input's resolution."""
        return model(x)  # type: ignore[no-any-return]

    def batch_loss(
        self, model: nn.Module, patches: Sequence[Patch], device: torch.device
    ) -> torch.Tensor:
        import torch

        from plugins.methods.deep.inference import to_tensor
        from plugins.methods.deep.losses import segmentation_loss

        x = to_tensor(np.stack([p.image for p in patches]), device)
        labels = torch.from_numpy(np.stack([p.labels for p in patches])).to(device)
        valid = torch.from_numpy(np.stack([p.valid for p in patches])).to(device)
        logits = self.forward(model, x)
        return segmentation_loss(logits, labels, valid, self.dice_weight)

    def infer(
        self, model: nn.Module, images: Sequence[np.ndarray], device: torch.device
    ) -> list[Prediction]:
        from plugins.methods.deep.inference import predict_logits

        logits = predict_logits(
            lambda x: self.forward(model, x),
            images,
            device,
            self.stride(),
            self.tile,
            self.batch_size,
        )
        params = PostProcess.named(self.postprocess)
        return [self._to_prediction(value, params) for value in logits]

    def _to_prediction(self, logits: np.ndarray, params: PostProcess) -> Prediction:
        if logits.shape[0] == 1:
            probabilities = 1.0 / (1.0 + np.exp(-logits[0].astype(np.float64)))
            score, classes = probabilities, None
        else:
            shifted = np.exp(logits - logits.max(axis=0, keepdims=True))
            probabilities = shifted / shifted.sum(axis=0, keepdims=True)
            score = 1.0 - probabilities[0]
            classes = 1 + probabilities[1:].argmax(axis=0).astype(np.int32)
        foreground, instances = postprocess(score, params)
        if classes is not None:
            classes = np.where(foreground, classes, 0).astype(np.int32)
        return Prediction(
            foreground=foreground,
            instances=instances,
            classes=classes,
            probabilities=np.asarray(probabilities, dtype=np.float32),
            extras={"postprocess": params.as_dict() | {"name": self.postprocess}},
        )
