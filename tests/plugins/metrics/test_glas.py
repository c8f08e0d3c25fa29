"""GlaS object F1, object Dice and object Hausdorff on hand-worked cases, pooled over splits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plugins.metrics import glas
from plugins.metrics.glas import object_dice, object_f1, object_hausdorff

from ._helpers import boxes, make_pair


def test_both_empty() -> None:
    empty = np.zeros((5, 5), np.int32)
    assert object_f1(prediction=empty, reference=empty) == {
        "value": 1.0,
        "precision": 1.0,
        "recall": 1.0,
    }
    assert object_dice(prediction=empty, reference=empty) == 1.0
    assert object_hausdorff(prediction=empty, reference=empty) == 0.0


@pytest.mark.parametrize("empty_side", ["prediction", "reference"])
def test_one_side_empty_uses_the_diagonal(empty_side: str) -> None:
    obj = boxes((3, 4), (7, 0, 1, 0, 2))
    empty = np.zeros((3, 4), np.int32)
    kw = {"prediction": empty, "reference": obj}
    if empty_side == "reference":
        kw = {"prediction": obj, "reference": empty}
    assert object_f1(**kw)["value"] == 0.0
    assert object_dice(**kw) == 0.0
    assert object_hausdorff(**kw) == pytest.approx(5.0)  # hypot(3, 4)


def test_identical_objects_with_large_ids_and_two_pieces() -> None:
    ref = boxes((12, 12), (300, 0, 4, 0, 4), (300, 8, 12, 8, 12), (70000, 5, 7, 0, 12))
    pred = np.where(ref > 0, 1 + (ref == 300), 0).astype(np.int32)
    assert object_f1(prediction=pred, reference=ref)["value"] == 1.0
    assert object_dice(prediction=pred, reference=ref) == 1.0
    assert object_hausdorff(prediction=pred, reference=ref) == 0.0


def test_split(split_pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, ref = split_pair
    # Each half covers exactly 16/32 = 0.5 of the reference: not > 0.5, so no TP.
    assert object_f1(prediction=pred, reference=ref) == {
        "value": 0.0,
        "precision": 0.0,
        "recall": 0.0,
    }
    # Every partner Dice is 2·16/(32+16) = 2/3 on both sides.
    assert object_dice(prediction=pred, reference=ref) == pytest.approx(2 / 3)
    # The far end of the reference is 4 columns from either half.
    assert object_hausdorff(prediction=pred, reference=ref) == pytest.approx(4.0)


def test_merge(merge_pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, ref = merge_pair
    # The merged prediction's partner is id 2 (tie -> smallest id), covered fully: TP 1, FN 1.
    assert object_f1(prediction=pred, reference=ref) == pytest.approx(
        {"value": 2 / 3, "precision": 1.0, "recall": 0.5}
    )
    assert object_dice(prediction=pred, reference=ref) == pytest.approx(2 / 3)
    assert object_hausdorff(prediction=pred, reference=ref) == pytest.approx(4.0)


def test_cover_is_a_glas_hit_at_low_iou(cover_pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, ref = cover_pair
    assert object_f1(prediction=pred, reference=ref)["value"] == 1.0
    assert object_dice(prediction=pred, reference=ref) == pytest.approx(2 * 9 / 45)
    # farthest predicted pixel (6, 6) from the reference's corner (4, 4)
    assert object_hausdorff(prediction=pred, reference=ref) == pytest.approx(math.sqrt(8))


def test_unpartnered_objects_use_the_nearest_by_hausdorff() -> None:
    ref = boxes((3, 20), (1, 0, 1, 0, 2))
    pred = boxes((3, 20), (2, 0, 1, 5, 7), (3, 0, 1, 12, 15))
    # H(G, S2) = 5; H(G, S3) = max(12, 13) = 13.  Reference side: 5.
    # Prediction side, weighted by area: (2·5 + 3·13) / 5 = 9.8.
    assert object_hausdorff(prediction=pred, reference=ref) == pytest.approx((5 + 9.8) / 2)
    assert object_dice(prediction=pred, reference=ref) == 0.0


def test_split_level_pooling(merge_pair: tuple[np.ndarray, np.ndarray]) -> None:
    specs = {s.name: s for s in glas.specs()}
    assert all(s.level == "split" for s in specs.values())
    same = boxes((10, 12), (1, 0, 2, 0, 2), (2, 5, 8, 5, 8))  # areas 4 and 9
    pred, ref = merge_pair
    pairs = [make_pair(pred, ref), make_pair(same, same)]
    f1 = specs["object_f1"].split_values([specs["object_f1"].statistics(p) for p in pairs])
    assert f1 == pytest.approx({"value": 6 / 7, "precision": 1.0, "recall": 0.75})  # TP 3, FN 1
    dice = specs["object_dice"].split_values([specs["object_dice"].statistics(p) for p in pairs])
    # Both sides: (32 · 2/3 + 13 · 1) / (32 + 13)
    assert dice["value"] == pytest.approx((64 / 3 + 13) / 45)
    haus_stats = [specs["object_hausdorff"].statistics(p) for p in pairs]
    # Reference side: (16·4 + 16·4 + 0) / 45; prediction side: (32·4 + 0) / 45.
    assert specs["object_hausdorff"].split_values(haus_stats)["value"] == pytest.approx(128 / 45)
    assert specs["object_hausdorff"].image_value(haus_stats[0]) == pytest.approx(4.0)
    assert specs["object_hausdorff"].higher_is_better is False
