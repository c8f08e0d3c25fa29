"""Panoptic quality (pq, dq, sq, pooled) and the multi-class mPQ / bPQ on hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest

from plugins.metrics import panoptic
from plugins.metrics.panoptic import mpq, panoptic_quality

from ._helpers import boxes, make_pair

# A exact (IoU 1), B covered 12 of 16 (IoU .75), C a false positive: TP 2, FP 1, FN 0.
REF = boxes((10, 10), (1, 0, 4, 0, 4), (2, 5, 9, 5, 9))
PRED = boxes((10, 10), (11, 0, 4, 0, 4), (12, 5, 9, 5, 8), (13, 0, 2, 8, 10))


def test_hand_worked_pq() -> None:
    dq = 2 / (2 + 0.5)
    sq = (1 + 0.75) / 2
    assert panoptic_quality(prediction=PRED, reference=REF) == pytest.approx(
        {"value": dq * sq, "dq": dq, "sq": sq}
    )


def test_empty_conventions() -> None:
    empty = np.zeros((10, 10), np.int32)
    assert panoptic_quality(prediction=empty, reference=empty) == {
        "value": 1.0,
        "dq": 1.0,
        "sq": 1.0,
    }
    assert panoptic_quality(prediction=empty, reference=REF) == {"value": 0.0, "dq": 0.0, "sq": 0.0}


def test_exact_half_iou_is_no_match(split_pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, ref = split_pair
    assert panoptic_quality(prediction=pred, reference=ref) == {"value": 0.0, "dq": 0.0, "sq": 0.0}


def test_records_and_pooling() -> None:
    specs = {s.name: s for s in panoptic.specs()}
    empty = np.zeros((10, 10), np.int32)
    stats = {
        name: [
            specs[name].statistics(make_pair(PRED, REF)),
            specs[name].statistics(make_pair(empty, empty)),
        ]
        for name in ("pq", "dq", "sq", "pq_pooled")
    }
    pq1 = 0.8 * 0.875
    assert specs["pq"].split_values(stats["pq"])["value"] == pytest.approx((pq1 + 1) / 2)
    assert specs["dq"].split_values(stats["dq"])["value"] == pytest.approx((0.8 + 1) / 2)
    assert specs["sq"].image_value(stats["sq"][0]) == pytest.approx(0.875)
    # pooled: the empty image adds nothing to TP/FP/FN, so the split value is image 1's.
    assert specs["pq_pooled"].split_values(stats["pq_pooled"])["value"] == pytest.approx(pq1)


def test_mpq_averages_per_class_pq() -> None:
    ref_cls = np.where(REF == 1, 1, np.where(REF == 2, 2, 0))
    # prediction calls A class 1 (match), B class 1 (so class 2 has FN, class 1 has an FP), C class 2.
    pred_cls = np.where(PRED == 13, 2, np.where(PRED > 0, 1, 0))
    # class 1: TP A (IoU 1), FP B' -> dq = 1/1.5, sq = 1; class 2: FN B, FP C -> 0.
    value = mpq(
        prediction=PRED, reference=REF, prediction_classes=pred_cls, reference_classes=ref_cls
    )
    assert value == pytest.approx((1 / 1.5 + 0) / 2)
    specs = {s.name: s for s in panoptic.specs()}
    pair = make_pair(PRED, REF, pred_classes=pred_cls, ref_classes=ref_cls)
    stats = specs["mpq"].statistics(pair)
    assert stats["value"] == pytest.approx(value)
    assert (stats["tp_c1"], stats["fp_c1"], stats["fn_c1"]) == (1, 1, 0)
    assert specs["bpq"].statistics(pair)["value"] == pytest.approx(0.8 * 0.875)
    assert specs["mpq"].requires == {"instances", "classes"}


def test_object_class_is_the_majority_vote() -> None:
    compact = boxes((4, 4), (1, 0, 2, 0, 4), (2, 2, 4, 0, 4))
    classes = np.array([[3, 3, 3, 1], [3, 3, 1, 1], [0, 0, 0, 0], [0, 0, 0, 2]])
    # object 1: six 3s and two 1s -> 3; object 2: mostly background, one pixel of 2 -> 2.
    assert panoptic.object_classes(compact, 2, classes).tolist() == [3, 2]
