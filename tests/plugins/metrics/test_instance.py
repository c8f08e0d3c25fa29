"""DSB 2018 score, AJI, AJI+ and F1 at IoU > 0.5 on hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest

from plugins.metrics import instance
from plugins.metrics.instance import aji, aji_plus, dsb_map, f1_at_iou

from ._helpers import boxes, make_pair

EMPTY = np.zeros((10, 12), np.int32)
ONE = boxes((10, 12), (4, 1, 5, 1, 5))


def test_both_empty_scores_one() -> None:
    for fn in (dsb_map, aji, aji_plus):
        assert fn(prediction=EMPTY, reference=EMPTY) == 1.0
    assert f1_at_iou(prediction=EMPTY, reference=EMPTY) == {
        "value": 1.0,
        "precision": 1.0,
        "recall": 1.0,
    }


@pytest.mark.parametrize(("pred", "ref"), [(EMPTY, ONE), (ONE, EMPTY)])
def test_one_side_empty_scores_zero(pred: np.ndarray, ref: np.ndarray) -> None:
    for fn in (dsb_map, aji, aji_plus):
        assert fn(prediction=pred, reference=ref) == 0.0
    assert f1_at_iou(prediction=pred, reference=ref) == {
        "value": 0.0,
        "precision": 0.0,
        "recall": 0.0,
    }


def test_identical_with_noncontiguous_ids_above_255_at_the_border() -> None:
    ref = boxes((10, 12), (300, 0, 3, 0, 4), (70000, 5, 10, 8, 12), (2, 4, 6, 2, 5))
    pred = np.where(ref > 0, ref * 7 + 1, 0).astype(np.int32)  # same objects, other ids
    assert dsb_map(prediction=pred, reference=ref) == 1.0
    assert aji(prediction=pred, reference=ref) == 1.0
    assert aji_plus(prediction=pred, reference=ref) == 1.0
    assert f1_at_iou(prediction=pred, reference=ref)["value"] == 1.0


def test_split_object(split_pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, ref = split_pair
    # Each half has IoU 16/32 = 0.5 exactly: never a match (strict >).
    assert dsb_map(prediction=pred, reference=ref) == 0.0
    assert f1_at_iou(prediction=pred, reference=ref) == {
        "value": 0.0,
        "precision": 0.0,
        "recall": 0.0,
    }
    # AJI: tie -> id 5: C = 16, U = 32 + the unused half 16.  AJI+: one pair, same sums.
    assert aji(prediction=pred, reference=ref) == pytest.approx(16 / 48)
    assert aji_plus(prediction=pred, reference=ref) == pytest.approx(16 / 48)


def test_merged_objects(merge_pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, ref = merge_pair
    assert dsb_map(prediction=pred, reference=ref) == 0.0
    # AJI lets the merged prediction serve both: C = 16 + 16, U = 32 + 32.
    assert aji(prediction=pred, reference=ref) == pytest.approx(32 / 64)
    # AJI+ pairs it once: C = 16, U = 32 + the unpaired reference 16.
    assert aji_plus(prediction=pred, reference=ref) == pytest.approx(16 / 48)


def test_cover_at_low_iou(cover_pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, ref = cover_pair
    assert dsb_map(prediction=pred, reference=ref) == 0.0
    assert f1_at_iou(prediction=pred, reference=ref)["value"] == 0.0
    assert aji(prediction=pred, reference=ref) == pytest.approx(9 / 36)


def test_dsb_threshold_is_strict_at_exact_decimals() -> None:
    ref = boxes((8, 8), (1, 0, 4, 0, 4), (2, 4, 8, 4, 8))
    pred = boxes((8, 8), (1, 0, 4, 0, 3), (2, 4, 8, 4, 8))  # IoU 12/16 = 0.75 and 1.0
    # t = .50 .. .70: 2 matches of 2 -> 1; t = .75 (IoU not > .75) .. .95: 1 TP, 1 FP, 1 FN -> 1/3.
    assert dsb_map(prediction=pred, reference=ref) == pytest.approx((5 * 1 + 5 / 3) / 10)
    stats = instance.dsb_statistics(instance.overlap_table(prediction=pred, reference=ref))
    assert (stats["tp_70"], stats["tp_75"], stats["fp_75"], stats["fn_75"]) == (2, 1, 1, 1)


def test_two_piece_id_is_one_object() -> None:
    ref = boxes((8, 8), (5, 0, 2, 0, 2), (5, 6, 8, 6, 8))
    assert dsb_map(prediction=ref.copy(), reference=ref) == 1.0
    one_piece = boxes((8, 8), (5, 0, 2, 0, 2))  # IoU 4/8 = 0.5: no match
    assert f1_at_iou(prediction=one_piece, reference=ref)["value"] == 0.0
    assert aji(prediction=one_piece, reference=ref) == pytest.approx(0.5)


def test_f1_counts_partial_detection() -> None:
    ref = boxes((10, 10), (1, 0, 4, 0, 4), (2, 5, 9, 5, 9), (3, 0, 2, 8, 10))
    pred = boxes((10, 10), (8, 0, 4, 0, 3), (9, 6, 7, 6, 7))  # IoU .75 match, 1/16 no match
    assert f1_at_iou(prediction=pred, reference=ref) == pytest.approx(
        {"value": 2 / (2 + 1 + 2), "precision": 1 / 2, "recall": 1 / 3}
    )


def test_records_reduce_from_statistics(split_pair: tuple[np.ndarray, np.ndarray]) -> None:
    specs = {s.name: s for s in instance.specs()}
    pred, ref = split_pair
    stats_split = specs["aji"].statistics(make_pair(pred, ref))
    stats_same = specs["aji"].statistics(make_pair(ref, ref))
    assert specs["aji"].split_values([stats_split, stats_same])["value"] == pytest.approx(
        (1 / 3 + 1) / 2
    )
    pooled = specs["aji_pooled"]
    assert pooled.level == "split"
    # C = 16 + 32, U = 48 + 32
    assert pooled.split_values([stats_split, stats_same])["value"] == pytest.approx(48 / 80)
    f1 = specs["f1_at_iou"].split_values(
        [
            specs["f1_at_iou"].statistics(make_pair(pred, ref)),
            specs["f1_at_iou"].statistics(make_pair(ref, ref)),
        ]
    )
    assert f1 == pytest.approx({"value": 0.5, "precision": 0.5, "recall": 0.5})
    for s in (stats_split, stats_same):
        assert all(isinstance(v, float) for v in s.values())
