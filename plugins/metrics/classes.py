"""Class-map metrics: misclassification rates and per-class Dice / IoU with their macro mean.

Binary misclassification compares foregrounds (label > 0); the multi-class variants compare
class maps (0 = background).  Pixels the reference marks ``ignore`` are not scored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from harness import ImagePair, MetricSpec, hookimpl
from plugins.metrics.matching import compact
from plugins.metrics.pixel import dice_from_counts, foreground_pair, iou_from_counts, paired_arrays

CLASSES = frozenset({"classes"})


def _class_maps(prediction: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, r = paired_arrays(prediction, reference)
    if p.size == 0:
        raise ValueError("class metrics of an empty image are undefined")
    for name, a in (("prediction", p), ("reference", r)):
        if not (a.dtype == bool or np.issubdtype(a.dtype, np.integer)) or a.min() < 0:
            raise ValueError(f"{name} class map must hold non-negative integers")
    return p.astype(np.intp), r.astype(np.intp)


def misclassification_binary(*, prediction: np.ndarray, reference: np.ndarray) -> float:
    """1 − accuracy of foreground (label > 0) against background (every pixel scored).

    Lower is better, range [0, 1]; defined for any non-empty image.  Image level.
    """
    p, r = _class_maps(prediction, reference)
    return float(np.count_nonzero((p > 0) != (r > 0))) / p.size


def misclassification_multiclass(*, prediction: np.ndarray, reference: np.ndarray) -> float:
    """1 − accuracy on class maps (background is class 0, every pixel scored).

    Lower is better, range [0, 1]; defined for any non-empty image.  Image level.
    """
    p, r = _class_maps(prediction, reference)
    return float(np.count_nonzero(p != r)) / p.size


def class_statistics(*, prediction: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Per-class counts (keys ``intersection_c``, ``predicted_c``, ``reference_c``) for every
    class c > 0 present in the prediction or the reference, plus ``pixels`` and ``wrong``."""
    p, r = _class_maps(prediction, reference)
    joint, ids, _ = compact(np.stack([p, r]))  # shared compact ids 1..k-1 for classes > 0
    k = ids.size + 1
    cp, cr = joint[0].astype(np.intp), joint[1].astype(np.intp)
    table = np.bincount((cr * k + cp).ravel(), minlength=k * k).reshape(k, k)
    predicted, referenced = table.sum(axis=0), table.sum(axis=1)
    stats: dict[str, float] = {"pixels": float(p.size), "wrong": float(p.size - np.trace(table))}
    for i, c in enumerate(ids.tolist(), start=1):
        stats[f"intersection_{c}"] = float(table[i, i])
        stats[f"predicted_{c}"] = float(predicted[i])
        stats[f"reference_{c}"] = float(referenced[i])
    return stats


def _per_class(stats: Mapping[str, float], score) -> dict[int, float]:  # type: ignore[no-untyped-def]
    classes = sorted(int(k.split("_")[1]) for k in stats if k.startswith("intersection_"))
    return {
        c: score(stats[f"intersection_{c}"], stats[f"predicted_{c}"], stats[f"reference_{c}"])
        for c in classes
    }


def dice_per_class(*, prediction: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Dice of every class > 0 present in R or P (keys ``class_c``) and their macro mean
    (``value``).  Higher is better, range [0, 1]; no class present on either side -> 1.0;
    a class present on one side only -> 0.0 for that class.  Image level; the split also
    reports each class's mean over the images where it is present.  Source: Dice 1945."""
    per = _per_class(class_statistics(prediction=prediction, reference=reference), dice_from_counts)
    return {
        "value": float(np.mean(list(per.values()))) if per else 1.0,
        **{f"class_{c}": v for c, v in per.items()},
    }


def iou_per_class(*, prediction: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """IoU of every class > 0 present in R or P and their macro mean, with the conventions of
    :func:`dice_per_class`.  Higher is better, range [0, 1].  Source: Jaccard 1912."""
    per = _per_class(class_statistics(prediction=prediction, reference=reference), iou_from_counts)
    return {
        "value": float(np.mean(list(per.values()))) if per else 1.0,
        **{f"class_{c}": v for c, v in per.items()},
    }


# ---- records -------------------------------------------------------------------------------


def _class_counts(pair: ImagePair) -> dict[str, float]:
    def compute() -> dict[str, float]:
        pred, ref = pair.prediction.classes, pair.reference.classes
        if pred is None or ref is None:
            raise ValueError(
                f"sample {pair.reference.id!r}: class metrics need class maps on both sides"
            )
        pred, ref = np.asarray(pred), np.asarray(ref)
        if pair.reference.ignore is not None:
            keep = ~np.asarray(pair.reference.ignore, dtype=bool)
            pred, ref = pred[keep], ref[keep]
        return class_statistics(prediction=pred, reference=ref)

    return pair.cached("classes.counts", compute)  # type: ignore[no-any-return]


def _macro_stats(score):  # type: ignore[no-untyped-def]
    def statistics(pair: ImagePair) -> dict[str, float]:
        stats = dict(_class_counts(pair))
        per = _per_class(stats, score)
        stats["value"] = float(np.mean(list(per.values()))) if per else 1.0
        return stats

    return statistics


def _reduce_macro(score):  # type: ignore[no-untyped-def]
    def reduce(stats: Sequence[Mapping[str, float]]) -> dict[str, float]:
        """Mean over images of the macro mean; per class, the mean over the images where the
        class is present (component ``class_c``)."""
        if not stats:
            raise ValueError("cannot reduce a split with no images")
        out = {"value": float(np.mean([s["value"] for s in stats]))}
        per: dict[int, list[float]] = {}
        for s in stats:
            for c, v in _per_class(s, score).items():
                per.setdefault(c, []).append(v)
        out.update({f"class_{c}": float(np.mean(v)) for c, v in sorted(per.items())})
        return out

    return reduce


def _misclassification_binary_stats(pair: ImagePair) -> dict[str, float]:
    pred, ref = foreground_pair(pair)
    if pair.reference.ignore is not None:
        keep = ~np.asarray(pair.reference.ignore, dtype=bool)
        pred, ref = pred[keep], ref[keep]
    return {"value": misclassification_binary(prediction=pred, reference=ref)}


def _misclassification_multiclass_stats(pair: ImagePair) -> dict[str, float]:
    c = _class_counts(pair)
    return {"value": c["wrong"] / c["pixels"]}


def specs() -> list[MetricSpec]:
    return [
        MetricSpec(
            name="misclassification_binary",
            higher_is_better=False,
            statistics=_misclassification_binary_stats,
            description="1 - foreground/background pixel accuracy; mean over images",
        ),
        MetricSpec(
            name="misclassification_multiclass",
            higher_is_better=False,
            statistics=_misclassification_multiclass_stats,
            requires=CLASSES,
            reference_requires=CLASSES,
            description="1 - pixel accuracy on class maps; mean over images",
        ),
        MetricSpec(
            name="dice_per_class",
            higher_is_better=True,
            statistics=_macro_stats(dice_from_counts),
            reduce=_reduce_macro(dice_from_counts),
            requires=CLASSES,
            reference_requires=CLASSES,
            citation="Dice, Ecology 26(3):297-302, 1945",
            description="Macro mean over classes present in R or P of per-class Dice; "
            "mean over images (components class_<c>)",
        ),
        MetricSpec(
            name="iou_per_class",
            higher_is_better=True,
            statistics=_macro_stats(iou_from_counts),
            reduce=_reduce_macro(iou_from_counts),
            requires=CLASSES,
            reference_requires=CLASSES,
            citation="Jaccard, New Phytologist 11(2):37-50, 1912",
            description="Macro mean over classes present in R or P of per-class IoU; "
            "mean over images (components class_<c>)",
        ),
    ]


@hookimpl
def bench_register_metrics(register):  # type: ignore[no-untyped-def]
    for spec in specs():
        register(spec)
