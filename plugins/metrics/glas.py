"""GlaS 2015 object-level metrics: object F1, object Dice, object Hausdorff (split level).

Sirinukunwattana et al., Medical Image Analysis 35:489-502, 2017, and the challenge's MATLAB
evaluation.  The partner of an object is the object of the other side sharing the most pixels
(ties -> smallest id); it is neither one-to-one nor IoU based.  Per-image statistics are sums
(counts, area-weighted Dice / Hausdorff sums, areas), so split values pool them exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from harness import ImagePair, MetricSpec, hookimpl
from plugins.metrics.matching import (
    OverlapTable,
    instance_table,
    overlap_table,
    partners,
    ratio,
    require_images,
)
from plugins.metrics.nearest import squared_distances

INSTANCES = frozenset({"instances"})
CITATION = "Sirinukunwattana et al., Medical Image Analysis 35:489-502, 2017 (GlaS 2015)"


def object_f1_statistics(table: OverlapTable) -> dict[str, float]:
    """TP / FP / FN: a prediction is a TP when |S ∩ G*| / |G*| > 0.5 for its partner G*."""
    partner = partners(table.intersection, axis=0)  # partner reference of each prediction
    has = partner >= 0
    inter = table.intersection[partner[has], np.flatnonzero(has)]
    tp = int(np.count_nonzero(2 * inter > table.ref_areas[partner[has]]))
    return {"tp": float(tp), "fp": float(table.n_pred - tp), "fn": float(table.n_ref - tp)}


def reduce_object_f1(stats: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """F1, precision and recall from counts summed over the split.

    No objects on either side in the whole split -> 1.0; TP = 0 otherwise -> 0.0.
    """
    require_images(stats)
    tp, fp, fn = (sum(s[k] for s in stats) for k in ("tp", "fp", "fn"))
    if tp + fp + fn == 0:
        return {"value": 1.0, "precision": 1.0, "recall": 1.0}
    precision = ratio(tp, tp + fp, empty=0.0)
    recall = ratio(tp, tp + fn, empty=0.0)
    f1 = ratio(2 * precision * recall, precision + recall, empty=0.0)
    return {"value": f1, "precision": precision, "recall": recall}


def object_dice_statistics(table: OverlapTable) -> dict[str, float]:
    """Area-weighted Dice sums of both sides: Σ|G_i| Dice(G_i, S(G_i)), Σ|G_i|, and mirrored."""
    inter = table.intersection
    out: dict[str, float] = {}
    for side, axis, areas, other in (
        ("ref", 1, table.ref_areas, table.pred_areas),
        ("pred", 0, table.pred_areas, table.ref_areas),
    ):
        partner = partners(inter, axis=axis)
        has = partner >= 0
        own = np.flatnonzero(has)
        shared = inter[own, partner[has]] if axis == 1 else inter[partner[has], own]
        dice = 2.0 * shared / (areas[own] + other[partner[has]])
        out[f"{side}_weighted"] = float((areas[own] * dice).sum())
        out[f"{side}_area"] = float(areas.sum())
    return out


def _halves(stats: Sequence[Mapping[str, float]], empty: float) -> float:
    """½(Σ weighted_ref / Σ area_ref + Σ weighted_pred / Σ area_pred) over the split.

    A side with no object in the whole split takes the other side's term; both empty -> empty.
    """
    terms = []
    for side in ("ref", "pred"):
        area = sum(s[f"{side}_area"] for s in stats)
        if area:
            terms.append(sum(s[f"{side}_weighted"] for s in stats) / area)
    return float(np.mean(terms)) if terms else empty


def reduce_object_dice(stats: Sequence[Mapping[str, float]]) -> dict[str, float]:
    require_images(stats)
    return {"value": _halves(stats, empty=1.0)}


def _hausdorff(table: OverlapTable, i: int, j: int) -> float:
    """All-pixel Hausdorff distance between reference object i and predicted object j, from
    exact squared distances within the window holding both (a directed part is 0 when the
    object lies inside the other one, which the overlap table tells without any distance)."""
    a = table.bboxes("ref")[i]
    b = table.bboxes("pred")[j]
    win = tuple(slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b, strict=True))
    ref = table.ref_image[win] == i + 1
    pred = table.pred_image[win] == j + 1
    shared = table.intersection[i, j]
    to_pred = 0 if shared == table.ref_areas[i] else int(squared_distances(pred, ref).max())
    to_ref = 0 if shared == table.pred_areas[j] else int(squared_distances(ref, pred).max())
    return math.sqrt(max(to_pred, to_ref))  # exact squares: the root of the max is the max root


def _lower_bound(table: OverlapTable, i: int, j: int) -> int:
    """A lower bound of the Hausdorff distance from the bounding boxes alone: an object touches
    every side of its box, so a box edge lying d rows/cols beyond the other box's edge puts a
    pixel at least d away from every pixel of the other object."""
    a = table.bboxes("ref")[i]
    b = table.bboxes("pred")[j]
    return max(max(abs(x.start - y.start), abs(x.stop - y.stop)) for x, y in zip(a, b, strict=True))


def object_hausdorff_statistics(table: OverlapTable) -> dict[str, float]:
    """Area-weighted Hausdorff sums of both sides (distances in pixels).

    An object's distance is to its partner; without overlapping partner, to the nearest
    object of the other side by Hausdorff distance (candidates visited in order of a
    bounding-box lower bound, stopping once the bound exceeds the best distance found); with
    no object on the other side, the image diagonal.
    """
    inter = table.intersection
    diagonal = math.hypot(*table.ref_image.shape)
    memo: dict[tuple[int, int], float] = {}

    def h(i: int, j: int) -> float:
        if (i, j) not in memo:
            memo[(i, j)] = _hausdorff(table, i, j)
        return memo[(i, j)]

    def nearest(pairs: list[tuple[int, int]]) -> float:
        best = math.inf
        for bound, i, j in sorted((_lower_bound(table, i, j), i, j) for i, j in pairs):
            if bound >= best:
                break
            best = min(best, h(i, j))
        return best

    out: dict[str, float] = {}
    for side, axis, areas, n_other in (
        ("ref", 1, table.ref_areas, table.n_pred),
        ("pred", 0, table.pred_areas, table.n_ref),
    ):
        partner = partners(inter, axis=axis)
        total = 0.0
        for k, p in enumerate(partner.tolist()):
            if p >= 0:
                d = h(k, p) if side == "ref" else h(p, k)
            elif n_other:
                others = range(n_other)
                d = nearest([(k, o) for o in others] if side == "ref" else [(o, k) for o in others])
            else:
                d = diagonal
            total += float(areas[k]) * d
        out[f"{side}_weighted"] = total
        out[f"{side}_area"] = float(areas.sum())
    return out


def reduce_object_hausdorff(stats: Sequence[Mapping[str, float]]) -> dict[str, float]:
    require_images(stats)
    return {"value": _halves(stats, empty=0.0)}


def object_f1(*, prediction: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """GlaS object F1 of one image (a split pools the counts; see :func:`reduce_object_f1`).

    A predicted object is a true positive when its partner G* exists and |S∩G*|/|G*| > 0.5
    (strict); other predictions are false positives; FN = #reference objects - TP.  Returns
    ``{"value": F1, "precision": ..., "recall": ...}``.  Higher is better, range [0, 1];
    no objects on either side -> 1.0; TP = 0 otherwise -> 0.0.
    """
    table = overlap_table(prediction=prediction, reference=reference)
    return reduce_object_f1([object_f1_statistics(table)])


def object_dice(*, prediction: np.ndarray, reference: np.ndarray) -> float:
    """GlaS object Dice of one image: ½[Σ ω_i Dice(G_i, S(G_i)) + Σ ω̃_j Dice(S_j, G(S_j))].

    ω_i = |G_i|/Σ|G|, ω̃_j = |S_j|/Σ|S|; an object without partner contributes Dice 0.
    Higher is better, range [0, 1]; both empty -> 1.0; a side without objects takes the
    other side's term (so exactly one empty -> 0.0).
    """
    table = overlap_table(prediction=prediction, reference=reference)
    return reduce_object_dice([object_dice_statistics(table)])["value"]


def object_hausdorff(*, prediction: np.ndarray, reference: np.ndarray) -> float:
    """GlaS object Hausdorff of one image, weighted like :func:`object_dice`.

    Hausdorff distance over ALL pixels of the two objects (Euclidean, pixels).  An object
    without overlapping partner is compared with the nearest object (by Hausdorff distance)
    of the other side; no object there -> the image diagonal √(H²+W²).  Lower is better;
    both empty -> 0.
    """
    table = overlap_table(prediction=prediction, reference=reference)
    return reduce_object_hausdorff([object_hausdorff_statistics(table)])["value"]


# ---- records -------------------------------------------------------------------------------


def _stats(fn):  # type: ignore[no-untyped-def]
    def statistics(pair: ImagePair) -> dict[str, float]:
        return fn(instance_table(pair))  # type: ignore[no-any-return]

    return statistics


def specs() -> list[MetricSpec]:
    common: dict[str, Any] = {
        "requires": INSTANCES,
        "reference_requires": INSTANCES,
        "level": "split",
        "citation": CITATION,
    }
    return [
        MetricSpec(
            name="object_f1",
            higher_is_better=True,
            statistics=_stats(object_f1_statistics),
            reduce=reduce_object_f1,
            **common,
            description="GlaS object F1 (partner overlap > 50% of the reference "
            "object), counts pooled over the split (components precision, recall)",
        ),
        MetricSpec(
            name="object_dice",
            higher_is_better=True,
            statistics=_stats(object_dice_statistics),
            reduce=reduce_object_dice,
            **common,
            description="GlaS area-weighted object Dice pooled over the split",
        ),
        MetricSpec(
            name="object_hausdorff",
            higher_is_better=False,
            statistics=_stats(object_hausdorff_statistics),
            reduce=reduce_object_hausdorff,
            range=(0.0, math.inf),
            unit="px",
            **common,
            description="GlaS area-weighted all-pixel object Hausdorff distance pooled "
            "over the split",
        ),
    ]


@hookimpl
def bench_register_metrics(register):  # type: ignore[no-untyped-def]
    for spec in specs():
        register(spec)
