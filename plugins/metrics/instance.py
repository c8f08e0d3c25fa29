"""Instance (nuclei) metrics: DSB 2018 mean precision, AJI, AJI+ and F1 at IoU > 0.5.

All read one shared overlap table (:mod:`plugins.metrics.matching`).  Image level (split
value = mean over images) unless stated; ``aji_pooled`` sums C and U over the split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from harness import ImagePair, MetricSpec, hookimpl
from plugins.metrics.matching import (
    OverlapTable,
    hungarian,
    instance_table,
    overlap_table,
    ratio,
    require_images,
)

INSTANCES = frozenset({"instances"})
#: DSB thresholds as exact percentages 50, 55, ..., 95 (IoU > k/100 compared in integers).
DSB_PERCENTS = tuple(range(50, 100, 5))


def dsb_statistics(table: OverlapTable) -> dict[str, float]:
    """Per-threshold TP/FP/FN and the image score of the DSB 2018 metric."""
    stats: dict[str, float] = {}
    scores = []
    rows, cols = table.pairs_above(1, 2)  # every threshold >= 0.5 keeps a subset of these
    inter, union = table.intersection[rows, cols], table.union[rows, cols]
    for k in DSB_PERCENTS:
        tp = int(np.count_nonzero(inter * 100 > k * union))  # IoU > k/100, exactly
        fp, fn = table.n_pred - tp, table.n_ref - tp
        stats[f"tp_{k}"], stats[f"fp_{k}"], stats[f"fn_{k}"] = float(tp), float(fp), float(fn)
        scores.append(ratio(tp, tp + fp + fn, empty=1.0))
    stats["value"] = float(np.mean(scores))
    return stats


def dsb_map(*, prediction: np.ndarray, reference: np.ndarray) -> float:
    """Kaggle Data Science Bowl 2018 score of one image.

    For t in {0.50, 0.55, ..., 0.95} (exact decimals) objects are matched one-to-one with
    IoU > t (strict); precision(t) = TP / (TP + FP + FN); the score is the mean over t.
    Higher is better, range [0, 1]; both empty -> 1.0, exactly one empty -> 0.0.  Image
    level: the split value is the mean over images.
    Source: Caicedo et al., Nature Methods 16, 2019 (DSB 2018).
    """
    return dsb_statistics(overlap_table(prediction=prediction, reference=reference))["value"]


def aji_statistics(table: OverlapTable) -> dict[str, float]:
    """C and U of the Aggregated Jaccard Index (Kumar et al. 2017) and the image value."""
    iou = table.iou
    intersection = table.intersection
    c = 0
    u = 0
    used = np.zeros(table.n_pred, dtype=bool)
    if table.n_pred:
        best = np.argmax(iou, axis=1)  # ties -> smallest predicted id
        rows = np.arange(table.n_ref)
        inter = intersection[rows, best]
        hit = inter > 0
        c = int(inter[hit].sum())
        u = int(table.union[rows[hit], best[hit]].sum()) + int(table.ref_areas[~hit].sum())
        used[best[hit]] = True
    else:
        u = int(table.ref_areas.sum())
    u += int(table.pred_areas[~used].sum())
    return {"c": float(c), "u": float(u), "value": ratio(c, u, empty=1.0)}


def aji(*, prediction: np.ndarray, reference: np.ndarray) -> float:
    """Aggregated Jaccard Index of one image (Kumar et al., IEEE TMI 36(7), 2017).

    For every reference object G_i take S* = argmax_S IoU(G_i, S) (ties -> smallest id; one
    prediction may serve several references): C += |G_i ∩ S*|, U += |G_i ∪ S*|; a reference
    without overlapping prediction adds |G_i| to U; every prediction never chosen adds its
    area to U.  AJI = C / U.  Higher is better, range [0, 1]; both empty -> 1.0.  Image level
    (``aji``: mean over images); ``aji_pooled`` sums C and U over the split.
    """
    return aji_statistics(overlap_table(prediction=prediction, reference=reference))["value"]


def aji_plus_statistics(table: OverlapTable) -> dict[str, float]:
    """C and U of AJI+ (one-to-one Hungarian matching maximising IoU among IoU > 0 pairs)."""
    rows, cols = hungarian(table.iou)
    c = int(table.intersection[rows, cols].sum())
    u = int(table.union[rows, cols].sum())
    ref_left = np.ones(table.n_ref, dtype=bool)
    ref_left[rows] = False
    pred_left = np.ones(table.n_pred, dtype=bool)
    pred_left[cols] = False
    u += int(table.ref_areas[ref_left].sum()) + int(table.pred_areas[pred_left].sum())
    return {"c": float(c), "u": float(u), "value": ratio(c, u, empty=1.0)}


def aji_plus(*, prediction: np.ndarray, reference: np.ndarray) -> float:
    """AJI+ of one image (Graham et al., HoVer-Net, Medical Image Analysis 58, 2019).

    Objects are paired one-to-one maximising total IoU (Hungarian) among pairs with IoU > 0;
    C sums the intersections and U the unions of pairs plus the areas of every unpaired object
    of both sides.  Higher is better, range [0, 1]; both empty -> 1.0.  Image level.
    """
    return aji_plus_statistics(overlap_table(prediction=prediction, reference=reference))["value"]


def f1_statistics(table: OverlapTable) -> dict[str, float]:
    """TP/FP/FN at IoU > 0.5 with the image's F1, precision and recall."""
    tp = int(table.pairs_above(1, 2)[0].size)
    fp, fn = table.n_pred - tp, table.n_ref - tp
    empty = 1.0 if table.n_pred == table.n_ref == 0 else 0.0
    return {
        "tp": float(tp),
        "fp": float(fp),
        "fn": float(fn),
        "precision": ratio(tp, tp + fp, empty=empty),
        "recall": ratio(tp, tp + fn, empty=empty),
        "value": ratio(2 * tp, 2 * tp + fp + fn, empty=1.0),
    }


def f1_at_iou(*, prediction: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Detection F1 with one-to-one matching at IoU > 0.5 (strict), plus precision and recall.

    Returns ``{"value": f1, "precision": ..., "recall": ...}``.  Higher is better, range
    [0, 1].  Both empty -> all 1.0; a ratio whose denominator is 0 otherwise -> 0.0.  Image
    level (each of the three is averaged over images).
    """
    stats = f1_statistics(overlap_table(prediction=prediction, reference=reference))
    return {k: stats[k] for k in ("value", "precision", "recall")}


# ---- records -------------------------------------------------------------------------------


def _mean_with(*components: str):  # type: ignore[no-untyped-def]
    def reduce(stats: Sequence[Mapping[str, float]]) -> dict[str, float]:
        if not stats:
            raise ValueError("cannot reduce a split with no images")
        keys = ("value", *components)
        return {k: float(np.mean([s[k] for s in stats])) for k in keys}

    return reduce


def reduce_pooled_aji(stats: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """AJI with C and U summed over every image of the split (empty split -> 1.0)."""
    require_images(stats)
    c = sum(s["c"] for s in stats)
    u = sum(s["u"] for s in stats)
    return {"value": ratio(c, u, empty=1.0), "c": c, "u": u}


def _stats(fn):  # type: ignore[no-untyped-def]
    def statistics(pair: ImagePair) -> dict[str, float]:
        return fn(instance_table(pair))  # type: ignore[no-any-return]

    return statistics


_KUMAR = "Kumar et al., IEEE Transactions on Medical Imaging 36(7):1550-1560, 2017"
_GRAHAM = "Graham et al., Medical Image Analysis 58:101563, 2019 (HoVer-Net)"


def specs() -> list[MetricSpec]:
    common: dict[str, Any] = {
        "requires": INSTANCES,
        "reference_requires": INSTANCES,
        "higher_is_better": True,
    }
    return [
        MetricSpec(
            name="dsb_map",
            statistics=_stats(dsb_statistics),
            **common,
            citation="Caicedo et al., Nature Methods 16:1247-1253, 2019 (Data Science Bowl 2018)",
            description="Mean over IoU thresholds 0.50..0.95 of TP/(TP+FP+FN), matches at "
            "IoU > t; mean over images",
        ),
        MetricSpec(
            name="aji",
            statistics=_stats(aji_statistics),
            **common,
            citation=_KUMAR,
            description="Aggregated Jaccard Index per image; mean over images",
        ),
        MetricSpec(
            name="aji_pooled",
            statistics=_stats(aji_statistics),
            level="split",
            reduce=reduce_pooled_aji,
            **common,
            citation=_KUMAR,
            description="Aggregated Jaccard Index with C and U summed over the split",
        ),
        MetricSpec(
            name="aji_plus",
            statistics=_stats(aji_plus_statistics),
            **common,
            citation=_GRAHAM,
            description="AJI+ (one-to-one Hungarian matching on IoU); mean over images",
        ),
        MetricSpec(
            name="f1_at_iou",
            statistics=_stats(f1_statistics),
            reduce=_mean_with("precision", "recall"),
            **common,
            description="Object F1 with one-to-one matches at IoU > 0.5; mean over images "
            "(components: precision, recall)",
        ),
    ]


@hookimpl
def bench_register_metrics(register):  # type: ignore[no-untyped-def]
    for spec in specs():
        register(spec)
