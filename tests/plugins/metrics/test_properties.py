"""Property tests: ranges, symmetry, invariance to relabelling ids, perfect identical scores."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from plugins.metrics.boundary import boundary_statistics
from plugins.metrics.classes import dice_per_class, iou_per_class
from plugins.metrics.glas import object_dice, object_f1, object_hausdorff
from plugins.metrics.instance import aji, aji_plus, dsb_map, f1_at_iou
from plugins.metrics.panoptic import panoptic_quality

IDS = st.sampled_from([0, 0, 0, 1, 2, 7, 300, 70000])
LABELS = arrays(np.int32, st.tuples(st.integers(1, 9), st.integers(1, 9)), elements=IDS)
FAST = settings(max_examples=60, deadline=None)


@st.composite
def label_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    ref = draw(LABELS)
    pred = draw(arrays(np.int32, ref.shape, elements=IDS))
    return pred, ref


def unit_scores(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Every [0, 1] score of one image."""
    pq = panoptic_quality(prediction=pred, reference=ref)
    return {
        "dsb_map": dsb_map(prediction=pred, reference=ref),
        "aji": aji(prediction=pred, reference=ref),
        "aji_plus": aji_plus(prediction=pred, reference=ref),
        "f1": f1_at_iou(prediction=pred, reference=ref)["value"],
        "pq": pq["value"],
        "dq": pq["dq"],
        "sq": pq["sq"],
        "object_f1": object_f1(prediction=pred, reference=ref)["value"],
        "object_dice": object_dice(prediction=pred, reference=ref),
        "nsd": boundary_statistics(prediction=pred, reference=ref)["nsd"],
        "dice_per_class": dice_per_class(prediction=pred, reference=ref)["value"],
        "iou_per_class": iou_per_class(prediction=pred, reference=ref)["value"],
    }


def distances(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    b = boundary_statistics(prediction=pred, reference=ref)
    return {
        "hd": b["hd"],
        "hd95": b["hd95"],
        "object_hausdorff": object_hausdorff(prediction=pred, reference=ref),
    }


@FAST
@given(label_pairs())
def test_values_in_range(pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, ref = pair
    for name, value in unit_scores(pred, ref).items():
        assert 0.0 <= value <= 1.0, name
    d = distances(pred, ref)
    diagonal = math.hypot(*ref.shape)
    assert 0.0 <= d["hd95"] <= d["hd"] <= diagonal
    assert 0.0 <= d["object_hausdorff"] <= diagonal * (1 + 1e-12)  # area-weighted mean


@FAST
@given(label_pairs())
def test_symmetric_metrics(pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, ref = pair
    forward, backward = unit_scores(pred, ref), unit_scores(ref, pred)
    for name in (
        "dsb_map",
        "f1",
        "pq",
        "dq",
        "sq",
        "object_dice",
        "nsd",
        "dice_per_class",
        "iou_per_class",
    ):
        assert math.isclose(forward[name], backward[name], abs_tol=1e-12), name
    df, db = distances(pred, ref), distances(ref, pred)
    for name in df:
        assert math.isclose(df[name], db[name], rel_tol=1e-6), name


def _relabel(labels: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    out = labels.copy()
    for old, new in mapping.items():
        out[labels == old] = new
    return out


@FAST
@given(label_pairs(), st.permutations([1, 2, 7, 300, 70000]), st.randoms())
def test_relabelling_invariance(
    pair: tuple[np.ndarray, np.ndarray], perm: list[int], rnd: object
) -> None:
    pred, ref = pair
    ids = [1, 2, 7, 300, 70000]
    shuffled = _relabel(pred, dict(zip(ids, [p * 3 + 5 for p in perm])))
    before, after = unit_scores(pred, ref), unit_scores(shuffled, ref)
    # Metrics without id tie-breaks are invariant to any relabelling ...
    for name in ("dsb_map", "f1", "pq", "dq", "sq", "nsd"):
        assert math.isclose(before[name], after[name], abs_tol=1e-12), name
    # ... the others (argmax ties -> smallest id) to order-preserving relabelling.
    monotone = _relabel(ref, {i: 1000 * i + 17 for i in ids})
    kept = unit_scores(pred, monotone)
    for name in ("aji", "aji_plus", "object_f1", "object_dice"):
        assert math.isclose(before[name], kept[name], abs_tol=1e-12), name
    assert distances(pred, ref) == distances(pred, monotone)  # exact, not approximately


@FAST
@given(LABELS)
def test_identical_inputs_are_perfect(ref: np.ndarray) -> None:
    assert set(unit_scores(ref, ref).values()) == {1.0}
    assert set(distances(ref, ref).values()) == {0.0}
