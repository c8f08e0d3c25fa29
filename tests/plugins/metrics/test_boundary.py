"""hd, hd95 and nsd on hand-worked boundaries, with empty policy and pixel spacing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plugins.metrics import boundary
from plugins.metrics.boundary import boundary_statistics, hd, hd95, nsd

from ._helpers import boxes, make_pair


def test_boundary_is_four_connected_and_the_image_border_counts() -> None:
    square = boxes((8, 8), (1, 2, 6, 2, 6))
    assert np.count_nonzero(boundary.boundary(square)) == 12  # 4×4 ring around a 2×2 interior
    full = np.ones((4, 4), bool)
    assert np.count_nonzero(boundary.boundary(full)) == 12  # only the 2×2 centre is inner
    diamond = np.zeros((5, 5), bool)
    diamond[1:4, 2] = diamond[2, 1:4] = True
    assert not boundary.boundary(diamond)[2, 2]  # all four neighbours are inside


def test_parallel_lines_and_inclusive_tolerance() -> None:
    ref = boxes((10, 10), (1, 2, 3, 0, 10))
    pred = boxes((10, 10), (1, 5, 6, 0, 10))
    assert hd(prediction=pred, reference=ref) == pytest.approx(3.0)
    assert hd95(prediction=pred, reference=ref) == pytest.approx(3.0)
    assert nsd(prediction=pred, reference=ref) == 0.0
    assert nsd(prediction=pred, reference=ref, tolerance=3.0) == 1.0  # "within" is inclusive


def test_hd95_takes_directed_percentiles_with_linear_interpolation() -> None:
    ref = boxes((10, 10), (1, 0, 1, 0, 10))
    pred = ref.copy()
    pred[6, 0] = 1  # one stray pixel 6 rows away
    # ∂P distances sorted: ten 0s and one 6; 95th percentile at rank 9.5 -> 3.0
    stats = boundary_statistics(prediction=pred, reference=ref)
    assert stats == pytest.approx({"hd": 6.0, "hd95": 3.0, "nsd": 20 / 21})


def test_empty_policy() -> None:
    empty = np.zeros((3, 4), np.int32)
    obj = boxes((3, 4), (1, 0, 1, 0, 1))
    assert boundary_statistics(prediction=empty, reference=empty) == {
        "hd": 0.0,
        "hd95": 0.0,
        "nsd": 1.0,
    }
    assert boundary_statistics(prediction=obj, reference=empty) == {
        "hd": 5.0,
        "hd95": 5.0,
        "nsd": 0.0,
    }
    assert boundary_statistics(prediction=empty, reference=obj, spacing=(2.0, 0.5))[
        "hd"
    ] == pytest.approx(math.hypot(6, 2))
    # each statistic on its own, and through its record, keeps the same policy
    for pred, ref, expected in ((empty, empty, (0.0, 0.0, 1.0)), (obj, empty, (5.0, 5.0, 0.0))):
        assert (hd(prediction=pred, reference=ref), hd95(prediction=pred, reference=ref)) == (
            expected[:2]
        )
        assert nsd(prediction=pred, reference=ref) == expected[2]
        pair = make_pair(pred, ref)
        values = [boundary.specs()[k].statistics(pair)["value"] for k in range(3)]
        assert tuple(values) == expected


def test_identical_is_perfect() -> None:
    ref = boxes((9, 9), (3, 0, 4, 0, 9), (400, 6, 9, 2, 5))
    assert boundary_statistics(prediction=ref, reference=ref) == {
        "hd": 0.0,
        "hd95": 0.0,
        "nsd": 1.0,
    }


@pytest.mark.parametrize(
    ("spacing", "expected"), [((0.5, 1.0), 1.5), ((2.0, 2.0), 6.0), ((1.0, 3.0), 3.0)]
)
def test_spacing_scales_distances(spacing: tuple[float, float], expected: float) -> None:
    ref = boxes((10, 10), (1, 2, 3, 0, 10))
    pred = boxes((10, 10), (1, 5, 6, 0, 10))
    assert hd(prediction=pred, reference=ref, spacing=spacing) == pytest.approx(expected)


def test_records_use_spacing_and_ignore() -> None:
    specs = {s.name: s for s in boundary.specs()}
    ref = boxes((10, 10), (1, 2, 3, 0, 10))
    pred = boxes((10, 10), (1, 5, 6, 0, 10), (2, 9, 10, 9, 10))
    ignore = np.zeros((10, 10), bool)
    ignore[9, 9] = True  # hides the stray predicted pixel
    pair = make_pair(pred, ref, ignore=ignore, meta={"spacing": (0.5, 0.5)})
    assert specs["hd"].statistics(pair)["value"] == pytest.approx(1.5)
    assert specs["nsd"].statistics(pair)["value"] == 1.0  # 1.5 <= 2 (tolerance in spacing units)
    assert specs["hd95"].split_values([specs["hd95"].statistics(pair)] * 2)[
        "value"
    ] == pytest.approx(1.5)
