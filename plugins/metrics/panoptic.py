"""Panoptic quality (PQ = DQ x SQ) for instance maps, pooled PQ, and multi-class mPQ / bPQ.

Kirillov et al., CVPR 2019, as used for CoNSeP / PanNuke (Graham et al. 2019, Gamper et al.
2020).  Pairs match at IoU > 0.5 (strict, hence unique).  Reads the shared overlap table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from harness import ImagePair, MetricSpec, hookimpl
from plugins.metrics.matching import (
    OverlapTable,
    instance_table,
    overlap_table,
    require_images,
)

INSTANCES = frozenset({"instances"})
CLASSED = frozenset({"instances", "classes"})


def _pq_terms(tp: float, fp: float, fn: float, iou_sum: float) -> tuple[float, float, float]:
    """(pq, dq, sq); both sides empty (tp = fp = fn = 0) -> all 1.0; SQ = 0 when TP = 0."""
    if tp + fp + fn == 0:
        return 1.0, 1.0, 1.0
    dq = tp / (tp + 0.5 * fp + 0.5 * fn)
    sq = iou_sum / tp if tp else 0.0
    return dq * sq, dq, sq


def _counts(inter: np.ndarray, union: np.ndarray) -> tuple[int, float]:
    hit = (2 * inter > union) & (inter > 0)
    return int(hit.sum()), float((inter[hit] / union[hit]).sum())


def pq_statistics(table: OverlapTable) -> dict[str, float]:
    """TP, FP, FN, summed matched IoU and the image's pq / dq / sq."""
    tp, iou_sum = _counts(table.intersection, table.union)
    fp, fn = table.n_pred - tp, table.n_ref - tp
    pq, dq, sq = _pq_terms(tp, fp, fn, iou_sum)
    return {
        "tp": float(tp),
        "fp": float(fp),
        "fn": float(fn),
        "iou_sum": iou_sum,
        "value": pq,
        "dq": dq,
        "sq": sq,
    }


def panoptic_quality(*, prediction: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """PQ of one image with its factors: ``{"value": pq, "dq": ..., "sq": ...}``.

    DQ = TP / (TP + FP/2 + FN/2), SQ = mean IoU of matched pairs (0 when TP = 0), PQ = DQ*SQ,
    matches at IoU > 0.5.  Higher is better, range [0, 1]; both empty -> 1.0.  Image level
    (``pq``, ``dq``, ``sq``: means over images); ``pq_pooled`` pools TP/FP/FN/IoU sums.
    """
    s = pq_statistics(overlap_table(prediction=prediction, reference=reference))
    return {"value": s["value"], "dq": s["dq"], "sq": s["sq"]}


def object_classes(compact_image: np.ndarray, n: int, classes: np.ndarray) -> np.ndarray:
    """Majority class (> 0 where any) of each of the ``n`` objects of a compact label image."""
    cls = np.asarray(classes).astype(np.intp)
    if cls.shape != compact_image.shape:
        raise ValueError(
            f"class map shape {cls.shape} differs from instance map shape {compact_image.shape}"
        )
    if cls.size and cls.min() < 0:
        raise ValueError("class maps must hold non-negative class ids")
    k = int(cls.max()) + 1 if cls.size else 1
    votes = np.bincount((compact_image.astype(np.intp) * k + cls).ravel(), minlength=(n + 1) * k)
    votes = votes.reshape(n + 1, k)[1:]
    votes[:, 0] = np.where(votes[:, 1:].sum(axis=1) > 0, 0, votes[:, 0])
    return np.argmax(votes, axis=1)


def mpq_statistics(
    table: OverlapTable, pred_classes: np.ndarray, ref_classes: np.ndarray
) -> dict[str, float]:
    """Per-class TP/FP/FN/IoU sums (keys ``tp_c3`` ...) and the image's mPQ.

    An object's class is the majority class under it; mPQ is the mean of per-class PQ over the
    classes (> 0) of objects on either side; no classed object on either side -> 1.0.
    """
    pc = object_classes(table.pred_image, table.n_pred, pred_classes)
    rc = object_classes(table.ref_image, table.n_ref, ref_classes)
    present = sorted(set(pc[pc > 0].tolist()) | set(rc[rc > 0].tolist()))
    stats: dict[str, float] = {}
    values = []
    for c in present:
        rows, cols = np.flatnonzero(rc == c), np.flatnonzero(pc == c)
        sub = np.ix_(rows, cols)
        tp, iou_sum = _counts(table.intersection[sub], table.union[sub])
        fp, fn = cols.size - tp, rows.size - tp
        stats.update(
            {
                f"tp_c{c}": float(tp),
                f"fp_c{c}": float(fp),
                f"fn_c{c}": float(fn),
                f"iou_c{c}": iou_sum,
            }
        )
        values.append(_pq_terms(tp, fp, fn, iou_sum)[0])
    stats["value"] = float(np.mean(values)) if values else 1.0
    return stats


def mpq(
    *,
    prediction: np.ndarray,
    reference: np.ndarray,
    prediction_classes: np.ndarray,
    reference_classes: np.ndarray,
) -> float:
    """Multi-class PQ of one image: mean over present classes of PQ restricted to that class.

    Higher is better, range [0, 1]; no classed object on either side -> 1.0.  Image level.
    """
    table = overlap_table(prediction=prediction, reference=reference)
    return mpq_statistics(table, prediction_classes, reference_classes)["value"]


# ---- records -------------------------------------------------------------------------------


def reduce_pq(stats: Sequence[Mapping[str, float]]) -> dict[str, float]:
    if not stats:
        raise ValueError("cannot reduce a split with no images")
    return {k: float(np.mean([s[k] for s in stats])) for k in ("value", "dq", "sq")}


def reduce_pq_pooled(stats: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """PQ from TP, FP, FN and IoU sums pooled over the split (empty split -> 1.0)."""
    require_images(stats)
    tp, fp, fn, iou_sum = (sum(s[k] for s in stats) for k in ("tp", "fp", "fn", "iou_sum"))
    pq, dq, sq = _pq_terms(tp, fp, fn, iou_sum)
    return {"value": pq, "dq": dq, "sq": sq}


def _pq_stats(pair: ImagePair) -> dict[str, float]:
    return pair.cached("panoptic.pq", lambda: pq_statistics(instance_table(pair)))  # type: ignore[no-any-return]


def _component_stats(name: str):  # type: ignore[no-untyped-def]
    def statistics(pair: ImagePair) -> dict[str, float]:
        stats = dict(_pq_stats(pair))
        stats["value"] = stats[name]
        return stats

    return statistics


def _mpq_stats(pair: ImagePair) -> dict[str, float]:
    pred_cls, ref_cls = pair.prediction.classes, pair.reference.classes
    if pred_cls is None or ref_cls is None:
        raise ValueError(f"sample {pair.reference.id!r}: mpq needs class maps on both sides")
    return mpq_statistics(instance_table(pair), pred_cls, ref_cls)


_KIRILLOV = "Kirillov et al., Panoptic Segmentation, CVPR 2019; Graham et al., MedIA 58, 2019"


def specs() -> list[MetricSpec]:
    common: dict[str, Any] = {
        "requires": INSTANCES,
        "reference_requires": INSTANCES,
        "higher_is_better": True,
        "citation": _KIRILLOV,
    }
    return [
        MetricSpec(
            name="pq",
            statistics=_pq_stats,
            reduce=reduce_pq,
            **common,
            description="Panoptic quality DQ*SQ at IoU > 0.5; mean over images (components dq, sq)",
        ),
        MetricSpec(
            name="dq",
            statistics=_component_stats("dq"),
            **common,
            description="Detection quality TP/(TP+FP/2+FN/2) at IoU > 0.5; mean over images",
        ),
        MetricSpec(
            name="sq",
            statistics=_component_stats("sq"),
            **common,
            description="Segmentation quality: mean IoU of matched pairs; mean over images",
        ),
        MetricSpec(
            name="pq_pooled",
            statistics=_pq_stats,
            reduce=reduce_pq_pooled,
            level="split",
            **common,
            description="Panoptic quality from TP/FP/FN/IoU pooled over the split",
        ),
        MetricSpec(
            name="mpq",
            statistics=_mpq_stats,
            requires=CLASSED,
            reference_requires=CLASSED,
            higher_is_better=True,
            citation=_KIRILLOV,
            description="Multi-class PQ: mean over classes present of per-class PQ; "
            "mean over images",
        ),
        MetricSpec(
            name="bpq",
            statistics=_pq_stats,
            requires=CLASSED,
            reference_requires=CLASSED,
            higher_is_better=True,
            citation=_KIRILLOV,
            description="Binary PQ (classes ignored) reported beside mpq; mean over images",
        ),
    ]


@hookimpl
def bench_register_metrics(register):  # type: ignore[no-untyped-def]
    for spec in specs():
        register(spec)
