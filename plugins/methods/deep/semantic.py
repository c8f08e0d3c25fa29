"""Semantic deep methods: a network giving per-pixel logits, trained with (B)CE + soft Dice.

Instances come from the shared post-processing step (foreground target) or, with the
separation-aware target (``encoding="rim"``: background / interior / rim), from interior
components grown into the foreground by a watershed, with thresholds chosen on validation
(:mod:`plugins.methods.deep.recipe`).  ``scale`` resizes images for training and prediction;
``tta`` averages logits over flips or quarter turns at prediction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

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
SEMANTIC_PARAMS = (
    "head", "num_classes", "postprocess", "dice_weight", "encoding", "rim", "scale", "tta",
)
ENCODINGS = ("auto", "foreground", "rim")


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
    encoding: str  # auto | foreground | rim
    rim: int  # rim width in pixels at the training scale (0: from the object size)
    scale: float  # image scale for training and prediction (0: from the object size)
    tta: str  # none | flips | rot90 | d4
    decode_: Any = None  # the rim decoding chosen on validation

    default_head: ClassVar[str] = "auto"

    def _check_head(self) -> None:
        if self.head not in ("auto", "binary", "classes"):
            raise ValueError(
                f"method {self.name!r}: head must be auto, binary or classes; got {self.head!r}"
            )
        PostProcess.named(self.postprocess)
        from plugins.methods.deep.inference import check_tta

        check_tta(self.tta)
        if self.encoding not in ENCODINGS:
            raise ValueError(
                f"method {self.name!r}: encoding must be auto, foreground or rim; got {self.encoding!r}"
            )
        if self.encoding == "rim" and self.head == "classes":
            raise ValueError(f"method {self.name!r}: encoding='rim' needs head 'auto' or 'binary'")
        if self.scale < 0 or self.rim < 0:
            raise ValueError(f"method {self.name!r}: scale and rim must be >= 0 (0: automatic)")
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

    def resolve(self, train: Sequence[Sample]) -> dict[str, Any]:
        """Resolve encoding, scale and rim width from the training data (all recorded)."""
        from plugins.methods.deep.recipe import auto_rim, auto_scale, median_diameter

        out = super().resolve(train)
        has_instances = bool(train) and all(s.instances is not None for s in train)
        encoding = self.encoding
        if encoding == "auto":
            encoding = "rim" if has_instances and not self._uses_classes(train) else "foreground"
        if encoding == "rim" and not has_instances:
            raise ValueError(f"method {self.name!r}: encoding='rim' needs instance maps in training")
        maps = [s.instances for s in train if s.instances is not None]
        diameter = median_diameter(maps) if has_instances else 0.0
        scale = self.scale or auto_scale(diameter)
        rim = self.rim or auto_rim(diameter, scale)
        return out | {
            "encoding": encoding,
            "scale": scale,
            "rim": rim if encoding == "rim" else 0,
            "median_object_diameter": diameter,
            "tta": self.tta,
        }

    def _encoding(self) -> str:
        return (self.resolved_ or {}).get("encoding", "foreground")

    def _scale(self) -> float:
        return float((self.resolved_ or {}).get("scale", self.scale or 1.0))

    def output_classes(self, train: Sequence[Sample]) -> int:
        if self._encoding() == "rim":
            return 3
        if not self._uses_classes(train):
            return 1
        if self.num_classes:
            return max(2, self.num_classes)
        return max(2, 1 + max(int(np.max(s.classes)) for s in train if s.classes is not None))

    @property
    def target(self) -> Target:  # type: ignore[override]
        if self._encoding() == "rim":
            return "rim"
        return "classes" if self.num_classes_ > 1 else "foreground"

    def training_set(self, samples: Sequence[Sample]) -> Any:
        from plugins.methods.deep.data import TrainingSet

        rim = int((self.resolved_ or {}).get("rim") or 1)
        return TrainingSet.from_samples(samples, self.target, self._scale(), rim)

    def after_training(
        self, model: nn.Module, held_out: Sequence[Sample], device: torch.device
    ) -> dict[str, Any]:
        """Rim encoding: choose the decoding thresholds on the held-out samples (with TTA)."""
        if self._encoding() != "rim":
            return {}
        from plugins.methods.deep.recipe import choose_decoding, selection_references

        assert self.resolved_ is not None
        logits = self._logits(model, [s.image for s in held_out], device, self.tta)
        probabilities = [_softmax(v) for v in logits]
        metric = self.resolved_["select"]
        references = selection_references(metric, held_out)
        diameter = float(self.resolved_.get("median_object_diameter") or 0.0)
        self.decode_, score, tried = choose_decoding(metric, probabilities, references, diameter)
        return {"decode": self.decode_.as_dict(), "decode_score": score, "decode_tried": len(tried)}

    def extra_state(self) -> dict[str, np.ndarray]:
        rim = self._encoding() == "rim"
        state = {"meta.scale": np.array([self._scale()], dtype=np.float64)}
        if rim:
            from plugins.methods.deep.recipe import Decode

            state["meta.decode"] = (self.decode_ or Decode()).as_array()
        return state

    def load_extra_state(self, state: Mapping[str, np.ndarray]) -> None:
        from plugins.methods.deep.recipe import Decode

        resolved = dict(self.resolved_ or {})
        if "meta.scale" in state:
            resolved["scale"] = float(np.asarray(state["meta.scale"]).ravel()[0])
        if "meta.decode" in state:
            resolved["encoding"] = "rim"
            self.decode_ = Decode.from_array(state["meta.decode"])
        elif self.num_classes_ == 3 and self.encoding == "rim":
            resolved["encoding"] = "rim"
        self.resolved_ = resolved

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

    def _logits(
        self, model: nn.Module, images: Sequence[np.ndarray], device: torch.device, tta: str
    ) -> list[np.ndarray]:
        from plugins.methods.deep.inference import predict_logits

        return predict_logits(
            lambda x: self.forward(model, x),
            images,
            device,
            self.stride(),
            self.tile,
            self.batch_size,
            scale=self._scale(),
            tta=tta,
        )

    def validation_score(
        self, model: nn.Module, held_out: Sequence[Sample], device: torch.device
    ) -> float:
        """During training: validation without TTA (cheaper); the chosen model gets its
        decoding tuned with TTA afterwards."""
        saved, self._validating = self._validating, True
        try:
            return super().validation_score(model, held_out, device)
        finally:
            self._validating = saved

    _validating: bool = False

    def infer(
        self, model: nn.Module, images: Sequence[np.ndarray], device: torch.device
    ) -> list[Prediction]:
        tta = "none" if self._validating else self.tta
        logits = self._logits(model, images, device, tta)
        if self._encoding() == "rim":
            return [self._rim_prediction(value) for value in logits]
        params = PostProcess.named(self.postprocess)
        return [self._to_prediction(value, params) for value in logits]

    def _rim_prediction(self, logits: np.ndarray) -> Prediction:
        from plugins.methods.deep.recipe import Decode, decode_rim

        probabilities = _softmax(logits)
        decode = self.decode_ or Decode()
        foreground, instances = decode_rim(probabilities, decode)
        return Prediction(
            foreground=foreground,
            instances=instances,
            probabilities=probabilities,
            extras={"postprocess": decode.as_dict() | {"name": "rim_watershed"}},
        )

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


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=0, keepdims=True))
    return (shifted / shifted.sum(axis=0, keepdims=True)).astype(np.float32)
