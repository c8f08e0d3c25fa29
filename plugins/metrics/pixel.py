"""Pixel (semantic) metrics on the binary foreground: Dice, IoU (Jaccard), pixel accuracy.

Foreground is label > 0.  Pure functions take keyword-only ``prediction=`` and ``reference=``
arrays of equal shape; the records below adapt them to (Prediction, Sample) pairs.
"""

from __future__ import annotations

import numpy as np

from harness import ImagePair, MetricSpec, hookimpl


def paired_arrays(prediction: object, reference: object) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as arrays of one shape; every metric function checks its inputs this way."""
    p = np.asarray(prediction)
    r = np.asarray(reference)
    if p.shape != r.shape:
        raise ValueError(f"prediction shape {p.shape} differs from reference shape {r.shape}")
    return p, r


def _masks(prediction: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, r = paired_arrays(prediction, reference)
    return p > 0, r > 0


def overlap_counts(*, prediction: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Pixel counts |P∩R|, |P|, |R| and the image size N for binary foregrounds."""
    p, r = _masks(prediction, reference)
    return {
        "intersection": float(np.count_nonzero(p & r)),
        "predicted": float(np.count_nonzero(p)),
        "reference": float(np.count_nonzero(r)),
        "pixels": float(p.size),
    }


def dice_from_counts(intersection: float, predicted: float, reference: float) -> float:
    if predicted + reference == 0:
        return 1.0
    return 2.0 * intersection / (predicted + reference)


def iou_from_counts(intersection: float, predicted: float, reference: float) -> float:
    union = predicted + reference - intersection
    if union == 0:
        return 1.0
    return intersection / union


def dice(*, prediction: np.ndarray, reference: np.ndarray) -> float:
    """Dice coefficient 2|P∩R| / (|P|+|R|) of the foregrounds (label > 0).

    Higher is better, range [0, 1].  Both empty → 1.0; exactly one empty → 0.0.
    Reference: Dice, Ecology 26(3), 1945.
    """
    c = overlap_counts(prediction=prediction, reference=reference)
    return dice_from_counts(c["intersection"], c["predicted"], c["reference"])


def iou(*, prediction: np.ndarray, reference: np.ndarray) -> float:
    """Intersection over union |P∩R| / |P∪R| (Jaccard index) of the foregrounds.

    Higher is better, range [0, 1].  Both empty → 1.0; exactly one empty → 0.0.
    Reference: Jaccard, New Phytologist 11(2), 1912.
    """
    c = overlap_counts(prediction=prediction, reference=reference)
    return iou_from_counts(c["intersection"], c["predicted"], c["reference"])


def pixel_accuracy(*, prediction: np.ndarray, reference: np.ndarray) -> float:
    """Fraction of pixels whose label equals the reference (all classes incl. background).

    For binary use pass foreground masks; for class maps pass the class maps.  Higher is
    better, range [0, 1].  An image has at least one pixel, so it is always defined.
    """
    p, r = paired_arrays(prediction, reference)
    if p.size == 0:
        raise ValueError("pixel_accuracy of an empty image is undefined")
    return float(np.count_nonzero(p == r)) / p.size


# ---- records ------------------------------------------------------------------------------


def foreground_pair(pair: ImagePair) -> tuple[np.ndarray, np.ndarray]:
    """Binary prediction and reference foregrounds with ignored pixels set to background."""

    def compute() -> tuple[np.ndarray, np.ndarray]:
        pred = pair.prediction.foreground_mask()
        ref = pair.reference.foreground
        if pair.reference.ignore is not None:
            keep = ~pair.reference.ignore
            pred = pred & keep
            ref = ref & keep
        return pred, ref

    return pair.cached("pixel.foreground", compute)  # type: ignore[no-any-return]


def _counts(pair: ImagePair) -> dict[str, float]:
    def compute() -> dict[str, float]:
        pred, ref = foreground_pair(pair)
        counts = overlap_counts(prediction=pred, reference=ref)
        if pair.reference.ignore is not None:
            counts["pixels"] -= float(np.count_nonzero(pair.reference.ignore))
        return counts

    return pair.cached("pixel.counts", compute)  # type: ignore[no-any-return]


def _dice_stats(pair: ImagePair) -> dict[str, float]:
    c = _counts(pair)
    return {"value": dice_from_counts(c["intersection"], c["predicted"], c["reference"])}


def _iou_stats(pair: ImagePair) -> dict[str, float]:
    c = _counts(pair)
    return {"value": iou_from_counts(c["intersection"], c["predicted"], c["reference"])}


def _accuracy_stats(pair: ImagePair) -> dict[str, float]:
    c = _counts(pair)
    # correct = TP + TN = N - (|P| + |R| - 2|P∩R|)
    wrong = c["predicted"] + c["reference"] - 2.0 * c["intersection"]
    if c["pixels"] <= 0:
        raise ValueError(f"sample {pair.reference.id!r}: no scored pixels")
    return {"value": (c["pixels"] - wrong) / c["pixels"]}


DICE = MetricSpec(
    name="dice",
    higher_is_better=True,
    statistics=_dice_stats,
    description="Pixel Dice of the binary foreground; mean over images",
    citation="Dice, Ecology 26(3):297-302, 1945",
)
IOU = MetricSpec(
    name="iou",
    higher_is_better=True,
    statistics=_iou_stats,
    description="Pixel IoU (Jaccard) of the binary foreground; mean over images",
    citation="Jaccard, New Phytologist 11(2):37-50, 1912",
)
PIXEL_ACCURACY = MetricSpec(
    name="pixel_accuracy",
    higher_is_better=True,
    statistics=_accuracy_stats,
    description="Fraction of correctly labelled pixels (foreground/background); mean over images",
)


@hookimpl
def bench_register_metrics(register):  # type: ignore[no-untyped-def]
    for spec in (DICE, IOU, PIXEL_ACCURACY):
        register(spec)
