"""Count errors: objects are ids (two pieces = one object), reduced over the split."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plugins.metrics import counting

from ._helpers import boxes, make_pair


def test_count_error_counts_ids_not_components() -> None:
    ref = boxes((8, 8), (5, 0, 2, 0, 2), (5, 6, 8, 6, 8), (300, 3, 5, 3, 5))
    pred = boxes((8, 8), (1, 0, 2, 0, 2), (2, 6, 8, 6, 8), (3, 3, 5, 3, 5), (4, 0, 1, 7, 8))
    assert counting.count_error(prediction=pred, reference=ref) == 2.0  # 4 vs 2
    assert counting.count_error(prediction=np.zeros_like(ref), reference=np.zeros_like(ref)) == 0.0


def test_split_rmse_and_mae() -> None:
    specs = {s.name: s for s in counting.specs()}
    a = boxes((6, 6), (1, 0, 2, 0, 2), (2, 3, 5, 3, 5))
    b = boxes((6, 6), (9, 0, 1, 0, 1))
    empty = np.zeros((6, 6), np.int32)
    stats = [
        specs["count_rmse"].statistics(make_pair(p, r)) for p, r in [(a, b), (empty, a), (b, b)]
    ]  # errors +1, -2, 0
    assert specs["count_rmse"].split_values(stats)["value"] == pytest.approx(math.sqrt(5 / 3))
    assert specs["count_mae"].split_values(stats)["value"] == pytest.approx(1.0)
    assert specs["count_mae"].image_value(stats[1]) == 2.0
    assert not specs["count_mae"].higher_is_better
