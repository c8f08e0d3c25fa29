"""``mask_rcnn``: torchvision's Mask R-CNN (ResNet-50-FPN), no pretrained weights, giving
instances directly.  ``backbone`` names the feature pyramid's encoder: ``resnet`` (the
default, the study's ResNet-50-FPN, random initialisation) or a timm encoder with features
at strides 4 to 32 (:class:`~plugins.methods.deep.nets.fpn.TimmFPN`); ``pretrained`` as in
``unet_plus_plus`` (``auto``: the packaged ImageNet EfficientNet-Lite0 weights for
``backbone="efficientnet_lite0"`` when installed), recorded as ``resolved.pretrained``.
Images are never rescaled: the transform's min/max size are set to each batch's own size
(training patches, whole images at prediction), so nothing is blown up to 800 px.  ``blocks`` as in ``fcn_resnet50``: (3, 4, 6, 3) is ResNet-50.  ``rois_per_image``
(torchvision: 512) and ``proposals`` (torchvision: 2000 in training, 1000 at test) are lower
by default to keep CPU training affordable; ``anchor_size`` is the smallest anchor
(torchvision: 32), doubling over the five pyramid levels.

``score_threshold`` is the detection score an instance needs to be painted.  ``"auto"`` (the
default) chooses it on the held-out part of the training data from :data:`SCORE_LEVELS`, by
the dataset's selection metric: a detector trained for a few hundred CPU steps scores true
objects well below torchvision's customary 0.5 (the DSB2018 v3 leaderboard's Mask R-CNN painted
nothing at 0.5), and where its scores sit depends on the budget.  During training, model
selection uses the best level of each validation; the chosen level is recorded and saved with
the fitted state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from harness import Prediction
from plugins.methods.deep.base import DeepMethod

if TYPE_CHECKING:
    import torch
    from torch import nn

    from harness import Sample
    from plugins.methods.deep.augment import Patch


def instance_targets(labels: np.ndarray, min_area: int = 4) -> dict[str, np.ndarray]:
    """Boxes (x1, y1, x2, y2; exclusive ends), binary masks and labels of the instances."""
    ids = [i for i in np.unique(labels) if i > 0]
    boxes, masks = [], []
    for i in ids:
        mask = labels == i
        if np.count_nonzero(mask) < min_area:
            continue
        rows, cols = np.nonzero(mask)
        boxes.append([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
        masks.append(mask)
    h, w = labels.shape
    return {
        "boxes": np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        "masks": np.asarray(masks, dtype=np.uint8).reshape(-1, h, w),
        "labels": np.ones(len(boxes), dtype=np.int64),
    }


@dataclass(frozen=True)
class Detections:
    """One image's detections, compact: each mask thresholded and cut to its bounding box.

    A soft mask is image-sized, so the ≈300 detections of a 1000×1000 DSB2018 image take
    1.2 GB as float32; cut to their boxes they take a few hundred kB, which lets every level
    of the score threshold be painted for a whole held-out set (68 images) at once."""

    shape: tuple[int, int]
    scores: np.ndarray  # (N,)
    boxes: np.ndarray  # (N, 4) row0, col0, row1, col1; exclusive ends; empty masks 0, 0, 0, 0
    masks: tuple[np.ndarray, ...]  # N boolean crops, each the size of its box

    @classmethod
    def from_soft(
        cls, masks: np.ndarray, scores: np.ndarray, mask_threshold: float
    ) -> Detections:
        boxes = np.zeros((len(masks), 4), dtype=np.int64)
        crops = []
        for k, soft in enumerate(masks):
            mask = soft > mask_threshold
            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            if rows.size:
                boxes[k] = rows[0], cols[0], rows[-1] + 1, cols[-1] + 1
            r0, c0, r1, c1 = boxes[k]
            crops.append(mask[r0:r1, c0:c1].copy())
        return cls(
            (int(masks.shape[1]), int(masks.shape[2])),
            np.asarray(scores, dtype=np.float32),
            boxes,
            tuple(crops),
        )

    def paint(self, score_threshold: float) -> np.ndarray:
        """An int32 instance map: detections scoring at least ``score_threshold``, the higher
        score winning overlaps, ids 1..K in decreasing score order over the detections that
        keep at least one pixel."""
        from skimage.segmentation import relabel_sequential

        keep = np.flatnonzero(self.scores >= score_threshold)
        order = keep[np.argsort(-self.scores[keep], kind="stable")]
        out = np.zeros(self.shape, dtype=np.int32)
        for new_id, k in reversed(list(enumerate(order, start=1))):
            r0, c0, r1, c1 = self.boxes[k]
            out[r0:r1, c0:c1][self.masks[k]] = new_id
        return relabel_sequential(out)[0].astype(np.int32, copy=False)


def paint_instances(
    masks: np.ndarray, scores: np.ndarray, score_threshold: float, mask_threshold: float
) -> np.ndarray:
    """An int32 instance map from soft masks N×H×W (see :meth:`Detections.paint`)."""
    return Detections.from_soft(masks, scores, mask_threshold).paint(score_threshold)


#: Detection scores tried on the held-out images when ``score_threshold="auto"``.
SCORE_LEVELS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def choose_score_threshold(
    metric: str,
    detections: Sequence[Detections],
    references: Sequence[np.ndarray],
    levels: Sequence[float] = SCORE_LEVELS,
) -> tuple[float, float, list[tuple[float, float]]]:
    """The level of ``levels`` whose painted instances score best by ``metric`` against the
    references (ties: the lower level); returns it, its score and every (level, score).

    ``references`` are instance maps, or foreground masks when ``metric`` is ``"dice"``
    (:func:`selection_score` compares foregrounds for it)."""
    from plugins.methods.deep.recipe import selection_score

    if not levels:
        raise ValueError("choose_score_threshold needs at least one level")
    tried: list[tuple[float, float]] = []
    best, best_score = float(levels[0]), float("-inf")
    for level in sorted(levels):
        score = selection_score(metric, [d.paint(level) for d in detections], references)
        tried.append((float(level), score))
        if score > best_score:
            best, best_score = float(level), score
    return best, best_score, tried


def _fix_pooler_scales(model: nn.Module) -> None:
    """Set the RoI poolers' feature scales to the FPN strides (1/4 … 1/32).

    torchvision infers them on the first call from the unpadded image size, which rounds to
    the wrong power of two for small images whose padding is large relative to their size,
    and then keeps them: a model's output would depend on the first image it saw."""
    from torchvision.ops.poolers import LevelMapper

    heads: Any = model.roi_heads
    for pooler in (heads.box_roi_pool, heads.mask_roi_pool):
        pooler.scales = [1 / 4, 1 / 8, 1 / 16, 1 / 32]
        pooler.map_levels = LevelMapper(2, 5, pooler.canonical_scale, pooler.canonical_level)


class MaskRCNN(DeepMethod):
    """Mask R-CNN (He et al., ICCV 2017) from torchvision, class-agnostic (object vs background)."""

    name = "mask_rcnn"
    version = "3"
    description = (
        "torchvision Mask R-CNN ResNet-50-FPN, instances directly; random initialisation "
        "(no pretrained weights; backbone=efficientnet_lite0: the packaged ImageNet encoder); "
        "images kept at their own size"
    )
    outputs = frozenset({"foreground", "instances"})
    requires = frozenset({"instances"})
    needs = ("torch", "torchvision")
    target = "instances"

    def __init__(
        self,
        backbone: str = "resnet",
        pretrained: str = "auto",
        blocks: tuple[int, int, int, int] = (3, 4, 6, 3),
        anchor_size: int = 16,
        score_threshold: float | Literal["auto"] = "auto",
        mask_threshold: float = 0.5,
        max_detections: int = 300,
        rois_per_image: int = 128,
        proposals: int = 1000,
        lr: float = 3e-4,
        weight_decay: float = 1e-4,
        schedule: str = "cosine",
        batch_size: int = 2,
        patch_size: int = 256,
        augment: str = "default",
        validate_every: int = 0,
        weights: str = "",
        steps: int = 0,
        select: str = "auto",
        polarity: str = "none",
    ) -> None:
        self.backbone = backbone
        self.pretrained = pretrained
        self.blocks = blocks
        self.anchor_size = anchor_size
        self.score_threshold = score_threshold
        self.mask_threshold = mask_threshold
        self.max_detections = max_detections
        self.rois_per_image = rois_per_image
        self.proposals = proposals
        self.lr = lr
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.batch_size = batch_size
        self.patch_size = patch_size
        self.augment = augment
        self.validate_every = validate_every
        self.weights = weights
        self.steps = steps
        self.select = select
        self.polarity = self.checked_polarity(polarity)
        self.score_: float | None = None  # the level chosen on validation ("auto")
        if score_threshold != "auto" and not (
            isinstance(score_threshold, (int, float)) and 0.0 <= score_threshold < 1.0
        ):
            raise ValueError(
                "method 'mask_rcnn': score_threshold must be 'auto' or a number in [0, 1); "
                f"got {score_threshold!r}"
            )
        if len(self.blocks) != 4 or min(self.blocks) < 1:
            raise ValueError(
                f"method 'mask_rcnn': blocks needs 4 positive counts; got {self.blocks!r}"
            )

    def output_classes(self, train: Sequence[object]) -> int:
        return 2  # background + object

    def _backbone(self) -> nn.Module:
        """The feature pyramid: ResNet (``blocks``) + FPN, or a timm encoder + FPN."""
        if self.backbone != "resnet":
            from plugins.methods.deep.nets.fpn import TimmFPN

            try:
                return TimmFPN(self.backbone)
            except ValueError as error:
                raise ValueError(f"method 'mask_rcnn' backbone={self.backbone!r}: {error}") from None
        from torchvision.models import ResNet
        from torchvision.models.detection.backbone_utils import BackboneWithFPN
        from torchvision.models.resnet import Bottleneck
        from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

        resnet = ResNet(Bottleneck, list(self.blocks))
        return BackboneWithFPN(
            resnet,
            return_layers={"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
            in_channels_list=[256, 512, 1024, 2048],
            out_channels=256,
            extra_blocks=LastLevelMaxPool(),
        )

    def resolved_pretrained(self) -> str:
        """The packaged weights the backbone starts from ('' for none; none for ResNet)."""
        from plugins.methods.deep.checkpoint import packaged_for

        return packaged_for(self.pretrained, self.backbone)

    def resolve(self, train: Sequence[Sample]) -> dict[str, Any]:
        return super().resolve(train) | {
            "backbone": self.backbone,
            "pretrained": self.resolved_pretrained() or "none",
        }

    def load_pretrained(self, model: nn.Module) -> None:
        pretrained = self.resolved_pretrained()
        if not pretrained:
            return
        from plugins.methods.deep.checkpoint import load_matching, packaged_weights

        load_matching(
            model.get_submodule("backbone.body"),
            packaged_weights(pretrained, self.backbone),
            f"mask_rcnn pretrained={pretrained!r}",
        )

    def build(self, num_classes: int) -> nn.Module:
        from torchvision.models.detection import MaskRCNN as Net
        from torchvision.models.detection.anchor_utils import AnchorGenerator

        from plugins.methods.deep.inference import MEAN, STD

        backbone = self._backbone()
        anchors = AnchorGenerator(
            sizes=tuple((self.anchor_size * 2**i,) for i in range(5)),
            aspect_ratios=((0.5, 1.0, 2.0),) * 5,
        )
        model = Net(
            backbone,
            num_classes=num_classes,
            rpn_anchor_generator=anchors,
            min_size=self.patch_size,
            max_size=self.patch_size,
            image_mean=list(MEAN),
            image_std=list(STD),
            box_detections_per_img=self.max_detections,
            box_score_thresh=self._floor(),
            box_batch_size_per_image=self.rois_per_image,
            rpn_pre_nms_top_n_train=self.proposals,
            rpn_post_nms_top_n_train=self.proposals,
            rpn_pre_nms_top_n_test=self.proposals,
            rpn_post_nms_top_n_test=self.proposals,
        )
        _fix_pooler_scales(model)
        return model

    @staticmethod
    def _native_size(model: nn.Module, height: int, width: int) -> None:
        model.transform.min_size = (min(height, width),)  # type: ignore[union-attr]
        model.transform.max_size = max(height, width)  # type: ignore[union-attr]

    def batch_loss(
        self, model: nn.Module, patches: Sequence[Patch], device: torch.device
    ) -> torch.Tensor:
        import torch

        images = [torch.from_numpy(p.image).permute(2, 0, 1).to(device) for p in patches]
        targets = []
        for p in patches:
            labels = np.where(p.valid, p.labels, 0)
            found = instance_targets(labels)
            targets.append({k: torch.from_numpy(v).to(device) for k, v in found.items()})
        self._native_size(model, *patches[0].labels.shape)
        losses = model(images, targets)
        return sum(losses.values())  # type: ignore[return-value]

    def _auto(self) -> bool:
        return self.score_threshold == "auto"

    def _floor(self) -> float:
        """The lowest score the detector returns: every level it may be painted at."""
        return min(SCORE_LEVELS) if self._auto() else float(self.score_threshold)

    def painting_threshold(self) -> float:
        """The score an instance needs to be painted: the fixed ``score_threshold``, or the
        level chosen on validation (0.5 until one is chosen)."""
        if not self._auto():
            return float(self.score_threshold)
        return 0.5 if self.score_ is None else self.score_

    def detect(
        self, model: nn.Module, images: Sequence[np.ndarray], device: torch.device
    ) -> list[Detections]:
        """Each image's detections at its own size, masks cut at ``mask_threshold``."""
        import torch

        found = []
        with torch.inference_mode():
            for image in images:
                # astype copies into a writable float array (the loaded image may be read-only)
                x = torch.from_numpy(image[..., :3].astype(np.float32)).to(device)
                x = x.permute(2, 0, 1) / 255.0
                self._native_size(model, *x.shape[-2:])
                out = model([x])[0]
                soft = out["masks"][:, 0].float().cpu().numpy()
                scores = out["scores"].float().cpu().numpy()
                del out
                found.append(Detections.from_soft(soft, scores, self.mask_threshold))
        return found

    def infer(
        self, model: nn.Module, images: Sequence[np.ndarray], device: torch.device
    ) -> list[Prediction]:
        threshold = self.painting_threshold()
        predictions = []
        for detections in self.detect(model, images, device):
            instances = detections.paint(threshold)
            predictions.append(
                Prediction(
                    foreground=instances > 0,
                    instances=instances,
                    extras={"detections": int(np.count_nonzero(detections.scores >= threshold))},
                )
            )
        return predictions

    def _choose(
        self, model: nn.Module, held_out: Sequence[Sample], device: torch.device
    ) -> tuple[float, float, list[tuple[float, float]]]:
        from plugins.methods.deep.recipe import selection_references

        assert self.resolved_ is not None
        metric = self.resolved_["select"]
        references = selection_references(metric, held_out)
        detections = self.detect(model, [s.image for s in held_out], device)
        return choose_score_threshold(metric, detections, references)

    def validation_score(
        self, model: nn.Module, held_out: Sequence[Sample], device: torch.device
    ) -> float:
        """With ``score_threshold="auto"``: the selection metric at the best level (one pass
        of the detector, every level painted from it)."""
        if not self._auto():
            return super().validation_score(model, held_out, device)
        return self._choose(model, held_out, device)[1]

    def after_training(
        self, model: nn.Module, held_out: Sequence[Sample], device: torch.device
    ) -> dict[str, Any]:
        """With ``score_threshold="auto"``: choose the level on the held-out images with the
        selected model."""
        if not self._auto():
            return {}
        self.score_, score, tried = self._choose(model, held_out, device)
        return {
            "score_threshold": self.score_,
            "score_threshold_score": score,
            "score_thresholds_tried": [list(t) for t in tried],
        }

    def extra_state(self) -> dict[str, np.ndarray]:
        return {"meta.score_threshold": np.array([self.painting_threshold()], dtype=np.float64)}

    def load_extra_state(self, state: Mapping[str, np.ndarray]) -> None:
        if self._auto() and "meta.score_threshold" in state:
            self.score_ = float(np.asarray(state["meta.score_threshold"]).ravel()[0])
