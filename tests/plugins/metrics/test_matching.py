"""The shared overlap table: ids, areas, intersections, partners, caching."""

from __future__ import annotations

import numpy as np
import pytest

from plugins.metrics import matching
from plugins.metrics.matching import OverlapTable, overlap_table, partners

from ._helpers import boxes, make_pair


def test_table_with_noncontiguous_large_ids_and_two_pieces() -> None:
    ref = boxes((8, 8), (700, 0, 2, 0, 2), (700, 5, 7, 5, 7), (3, 0, 2, 4, 8))
    pred = boxes((8, 8), (70000, 0, 2, 0, 4), (9, 5, 8, 5, 8))
    t = overlap_table(prediction=pred, reference=ref)
    assert t.ref_ids.tolist() == [3, 700] and t.pred_ids.tolist() == [9, 70000]
    assert t.ref_areas.tolist() == [8, 8] and t.pred_areas.tolist() == [9, 8]
    # id 700 has two 2×2 pieces: 4 px shared with id 70000 (top-left), 4 px with id 9.
    assert t.intersection.tolist() == [[0, 0], [4, 4]]
    assert t.union.tolist() == [[17, 16], [13, 12]]
    assert t.iou[1].tolist() == pytest.approx([4 / 13, 4 / 12])


def test_huge_ids_take_the_sorting_path() -> None:
    ref = boxes((6, 6), (2_000_000_000, 0, 3, 0, 3), (5, 3, 6, 3, 6))
    pred = boxes((6, 6), (1_500_000_000, 0, 3, 0, 2))
    t = overlap_table(prediction=pred, reference=ref)
    assert t.ref_ids.tolist() == [5, 2_000_000_000]
    assert t.intersection.tolist() == [[0], [6]]
    full = np.full((3, 3), 2_000_000_000, dtype=np.int64)  # no background at all
    t2 = overlap_table(prediction=full, reference=full)
    assert t2.n_ref == 1 and t2.intersection.tolist() == [[9]]


def test_partners_break_ties_towards_the_smallest_id() -> None:
    inter = np.array([[0, 5, 5], [0, 0, 0], [3, 0, 1]])
    assert partners(inter, axis=1).tolist() == [1, -1, 0]
    assert partners(inter, axis=0).tolist() == [2, 0, 0]
    assert partners(np.zeros((0, 2), int), axis=0).tolist() == [-1, -1]


def test_pairs_above_is_exact_and_strict() -> None:
    t = overlap_table(
        prediction=boxes((4, 4), (1, 0, 4, 0, 2)), reference=boxes((4, 4), (1, 0, 4, 0, 4))
    )
    assert t.iou[0, 0] == 0.5
    assert t.pairs_above(1, 2)[0].size == 0  # IoU = 0.5 is not > 0.5
    assert t.pairs_above(49, 100)[0].size == 1


@pytest.mark.parametrize(
    ("pred", "ref", "message"),
    [
        (np.zeros((3, 3), int), np.zeros((3, 4), int), "differs"),
        (np.zeros((3, 3), float), np.zeros((3, 3), int), "integer"),
        (np.full((3, 3), -1), np.zeros((3, 3), int), "negative"),
        (np.zeros((3, 3, 2), int), np.zeros((3, 3, 2), int), "2-D"),
    ],
)
def test_bad_input_is_named(pred: np.ndarray, ref: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        overlap_table(prediction=pred, reference=ref)


def test_table_is_computed_once_per_pair_and_respects_ignore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ref = boxes((6, 6), (1, 0, 3, 0, 3))
    pred = boxes((6, 6), (1, 0, 3, 0, 6))
    ignore = np.zeros((6, 6), bool)
    ignore[:, 3:] = True
    pair = make_pair(pred, ref, ignore=ignore)
    calls = []
    real = matching.overlap_table

    def counting(**kw: np.ndarray) -> OverlapTable:
        calls.append(1)
        return real(**kw)

    monkeypatch.setattr(matching, "overlap_table", counting)
    t = matching.instance_table(pair)
    assert matching.instance_table(pair) is t and len(calls) == 1
    assert t.pred_areas.tolist() == [9]  # the ignored half of the prediction is not scored


def test_missing_instances_is_a_clear_error() -> None:
    pair = make_pair(None, boxes((3, 3), (1, 0, 1, 0, 1)))
    with pytest.raises(ValueError, match="instance maps on both sides"):
        matching.instance_table(pair)


def test_every_object_metric_shares_one_table(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.plugins import build_registry

    calls = []
    real = matching.overlap_table

    def counting(**kw: np.ndarray) -> OverlapTable:
        calls.append(1)
        return real(**kw)

    monkeypatch.setattr(matching, "overlap_table", counting)
    registry = build_registry(env={})
    pair = make_pair(boxes((8, 8), (3, 0, 4, 0, 4)), boxes((8, 8), (9, 1, 5, 1, 5)))
    names = [
        "dsb_map",
        "aji",
        "aji_pooled",
        "aji_plus",
        "f1_at_iou",
        "pq",
        "dq",
        "sq",
        "pq_pooled",
        "object_f1",
        "object_dice",
        "object_hausdorff",
        "count_rmse",
    ]
    for name in names:
        registry.metric(name).statistics(pair)
    assert len(calls) == 1
