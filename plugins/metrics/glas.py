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
from plugins.metrics.nearest import PAD, Target, band_search, boundary, pad

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


class ObjectGeometry:
    """Per-object boundaries, boxes and padded label images of one overlap table, built on
    first use and shared by every Hausdorff distance of the image."""

    def __init__(self, table: OverlapTable) -> None:
        self.table = table
        self.images = {"ref": table.ref_image, "pred": table.pred_image}
        self._padded: dict[str, np.ndarray] = {}
        self._targets: dict[tuple[str, int], Target] = {}

    def box(self, side: str, k: int) -> tuple[slice, slice]:
        return self.table.bboxes(side)[k]

    def padded(self, side: str) -> np.ndarray:
        """The side's compact label image with a zero border of ``PAD`` (raveled)."""
        if side not in self._padded:
            self._padded[side] = pad(self.images[side]).ravel()
        return self._padded[side]

    def target(self, side: str, k: int) -> Target:
        """Nearest-pixel queries against object k (its 4-boundary within its box; pixels on
        the box's edge are kept too, which only adds pixels of the object)."""
        if (side, k) not in self._targets:
            win = self.box(side, k)
            edge = boundary(self.images[side][win] == k + 1)
            self._targets[(side, k)] = Target(*_coordinates(edge, win))
        return self._targets[(side, k)]

    def candidates(self, side: str, s: int, t: int) -> tuple[np.ndarray, tuple[slice, slice]]:
        """(mask over source s's box, the box) of the pixels of s outside target t (of the
        other side) that may be the farthest from t.

        A pixel at or left of the target's leftmost column whose left neighbour is in the
        source is dropped: that neighbour is strictly farther from every target pixel (each
        squared distance grows by 2(b_x - a_x) + 1 >= 1), and it is itself outside the
        target, so the largest distance is kept.  Likewise for the other three sides; what
        remains of a source beside its target is its one-sided rim.
        """
        win = self.box(side, s)
        src = self.images[side][win] == s + 1
        keep = src & (self.images[OTHER[side]][win] != t + 1)
        box = self.box(OTHER[side], t)
        # axis 0 on the arrays as they are, axis 1 on their transposed views
        for lo, hi, kept, own in (
            (win[0].start, box[0], keep, src),
            (win[1].start, box[1], keep.T, src.T),
        ):
            n = own.shape[0]
            before = min(hi.start - lo + 1, n)  # local indices at or before the target's first
            after = max(hi.stop - 1 - lo, 0)  # local indices at or after the target's last
            if before > 1:
                kept[1:before] &= ~own[: before - 1]
            if after < n - 1:
                kept[after : n - 1] &= ~own[after + 1 :]
        return keep, win


def _coordinates(mask: np.ndarray, win: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray]:
    """Image (rows, cols) of the True pixels of a mask of window ``win``."""
    rows, cols = np.divmod(np.flatnonzero(mask), mask.shape[1])
    return rows + win[0].start, cols + win[1].start


def geometry(table: OverlapTable) -> ObjectGeometry:
    if "glas.geometry" not in table._memo:
        table._memo["glas.geometry"] = ObjectGeometry(table)
    return table._memo["glas.geometry"]  # type: ignore[no-any-return]


OTHER = {"ref": "pred", "pred": "ref"}


def directed_maxima(table: OverlapTable, jobs: Sequence[tuple[str, int, int]]) -> list[int]:
    """Largest squared distance from the pixels of a source object to a target object of the
    other side, for every (source side, source index, target index) job; pairs that overlap.

    The candidate pixels of every job (:meth:`ObjectGeometry.candidates`) go through the
    offsets together, each looking for its own target label; a job with pixels beyond their
    reach then needs only those (every other pixel is nearer), asked through the bounded
    search of the k-d tree.
    """
    geo = geometry(table)
    out = [0] * len(jobs)
    for side in ("ref", "pred"):
        other = OTHER[side]
        width = geo.images[side].shape[1] + 2 * PAD
        flat = geo.padded(other)
        mine, bases, labels = [], [], []
        for n, (s_side, s, t) in enumerate(jobs):
            if s_side == side:
                keep, win = geo.candidates(side, s, t)
                rows, cols = _coordinates(keep, win)  # not empty: s is not inside t
                mine.append(n)
                bases.append((rows + PAD) * width + cols + PAD)
                labels.append(np.full(rows.size, t + 1, dtype=flat.dtype))
        if not mine:
            continue
        sizes = [b.size for b in bases]
        base = np.concatenate(bases)
        owner = np.repeat(np.arange(len(mine)), sizes)
        d2 = band_search(flat, width, base, np.concatenate(labels), owner)
        stops = np.cumsum(sizes).tolist()
        for n, start, stop in zip(mine, [0, *stops[:-1]], stops, strict=True):
            part = d2[start:stop]  # one job's pixels, as concatenated
            far = part < 0
            if far.any():  # its largest distance is among its unresolved pixels
                rows, cols = np.divmod(base[start:stop][far], width)
                out[n] = geo.target(other, jobs[n][2]).max_squared(rows - PAD, cols - PAD)
            else:
                out[n] = int(part.max())
    return out


def pair_hausdorff(table: OverlapTable, pairs: Sequence[tuple[int, int]]) -> list[float]:
    """All-pixel Hausdorff distance (pixels) between reference object i and predicted object
    j for every (i, j) in ``pairs``, exact.  A directed part is 0 when the object lies inside
    the other one (the overlap table tells without any distance); for overlapping pairs the
    offsets answer most pixels (:func:`directed_maxima`); pairs that do not overlap send
    their candidate pixels (:meth:`ObjectGeometry.candidates`) to the bounded search."""
    jobs: list[tuple[str, int, int]] = []
    slots: list[list[int]] = []
    result = [0.0] * len(pairs)
    apart: list[int] = []
    for n, (i, j) in enumerate(pairs):
        shared = table.intersection[i, j]
        if shared == 0:
            apart.append(n)
            continue
        mine = []
        if shared < table.ref_areas[i]:
            mine.append(len(jobs))
            jobs.append(("ref", i, j))
        if shared < table.pred_areas[j]:
            mine.append(len(jobs))
            jobs.append(("pred", j, i))
        slots.append([n, *mine])
    maxima = directed_maxima(table, jobs)
    for n, *mine in slots:
        result[n] = math.sqrt(max((maxima[m] for m in mine), default=0))
    for n in apart:
        result[n] = math.sqrt(apart_squared(table, *pairs[n]))
    return result


def apart_squared(table: OverlapTable, i: int, j: int, *, cutoff: int | None = None) -> int:
    """Squared Hausdorff distance between reference object i and predicted object j that do
    not overlap (every pixel of each lies outside the other).  With ``cutoff``, a value of at
    least ``cutoff`` may be reported as any value >= cutoff."""
    geo = geometry(table)
    best = -1
    for side, s, t in (("ref", i, j), ("pred", j, i)):
        rows, cols = _coordinates(*geo.candidates(side, s, t))
        best = max(best, geo.target(OTHER[side], t).max_squared(rows, cols, cutoff=cutoff))
        if cutoff is not None and best >= cutoff:
            break
    return best


def _lower_bound(table: OverlapTable, i: int, j: int) -> int:
    """A lower bound of the Hausdorff distance from the bounding boxes alone: an object touches
    every side of its box, so a box edge lying d rows/cols beyond the other box's edge puts a
    pixel at least d away from every pixel of the other object."""
    a = table.bboxes("ref")[i]
    b = table.bboxes("pred")[j]
    return max(max(abs(x.start - y.start), abs(x.stop - y.stop)) for x, y in zip(a, b, strict=True))


def nearest_squared(table: OverlapTable, pairs: Sequence[tuple[int, int]]) -> int:
    """The smallest squared Hausdorff distance over ``pairs`` of objects that do not overlap:
    candidates in order of their bounding-box lower bound, stopping once it reaches the best
    found; each candidate's search stops as soon as it cannot beat the best."""
    best: int | None = None
    for bound, i, j in sorted((_lower_bound(table, i, j), i, j) for i, j in pairs):
        if best is not None and bound * bound >= best:
            break
        d2 = apart_squared(table, i, j, cutoff=best)
        if best is None or d2 < best:
            best = d2
    assert best is not None
    return best


def object_hausdorff_statistics(table: OverlapTable) -> dict[str, float]:
    """Area-weighted Hausdorff sums of both sides (distances in pixels).

    An object's distance is to its partner; without overlapping partner, to the nearest
    object of the other side by Hausdorff distance; with no object on the other side, the
    image diagonal.
    """
    inter = table.intersection
    diagonal = math.hypot(*table.ref_image.shape)
    partner_of = {"ref": partners(inter, axis=1), "pred": partners(inter, axis=0)}
    pairs = sorted(
        {(k, int(p)) for k, p in enumerate(partner_of["ref"].tolist()) if p >= 0}
        | {(int(p), k) for k, p in enumerate(partner_of["pred"].tolist()) if p >= 0}
    )
    distance = dict(zip(pairs, pair_hausdorff(table, pairs), strict=True))
    out: dict[str, float] = {}
    for side, areas, n_other in (
        ("ref", table.ref_areas, table.n_pred),
        ("pred", table.pred_areas, table.n_ref),
    ):
        total = 0.0
        for k, p in enumerate(partner_of[side].tolist()):
            if p >= 0:
                d = distance[(k, p) if side == "ref" else (p, k)]
            elif n_other:
                others = range(n_other)
                candidates = [(k, o) for o in others] if side == "ref" else [(o, k) for o in others]
                d = math.sqrt(nearest_squared(table, candidates))
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
