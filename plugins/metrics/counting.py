"""Object count errors (split level): RMSE and MAE of the number of objects per image.

An object is one non-zero id (an id with several pieces counts once).  Reads the shared
overlap table, so counting costs nothing extra next to the other instance metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from harness import ImagePair, MetricSpec, hookimpl
from plugins.metrics.matching import check_labels, compact, instance_table

INSTANCES = frozenset({"instances"})


def count_statistics(n_pred: int, n_ref: int) -> dict[str, float]:
    """Counts and their error; additive over images."""
    err = float(n_pred - n_ref)
    return {
        "n_pred": float(n_pred),
        "n_ref": float(n_ref),
        "abs_error": abs(err),
        "squared_error": err * err,
    }


def _count(labels: np.ndarray) -> int:
    return int(compact(labels)[1].size)


def count_error(*, prediction: np.ndarray, reference: np.ndarray) -> float:
    """Signed count error n_pred − n_ref of one image (its absolute value is the image's MAE
    and RMSE).  Lower |error| is better; both empty -> 0."""
    p, r = check_labels(prediction, reference)
    return float(_count(p) - _count(r))


def reduce_count_rmse(stats: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """sqrt(mean((n_pred − n_ref)²)) over the images of the split."""
    if not stats:
        raise ValueError("cannot reduce a split with no images")
    return {"value": math.sqrt(sum(s["squared_error"] for s in stats) / len(stats))}


def reduce_count_mae(stats: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """mean |n_pred − n_ref| over the images of the split."""
    if not stats:
        raise ValueError("cannot reduce a split with no images")
    return {"value": sum(s["abs_error"] for s in stats) / len(stats)}


def _stats(pair: ImagePair) -> dict[str, float]:
    table = instance_table(pair)
    return count_statistics(table.n_pred, table.n_ref)


def specs() -> list[MetricSpec]:
    common: dict[str, Any] = {
        "higher_is_better": False,
        "statistics": _stats,
        "level": "split",
        "requires": INSTANCES,
        "reference_requires": INSTANCES,
        "range": (0.0, math.inf),
        "unit": "objects",
    }
    return [
        MetricSpec(
            name="count_rmse",
            reduce=reduce_count_rmse,
            **common,
            description="Root mean squared error of the object count per image",
        ),
        MetricSpec(
            name="count_mae",
            reduce=reduce_count_mae,
            **common,
            description="Mean absolute error of the object count per image",
        ),
    ]


@hookimpl
def bench_register_metrics(register):  # type: ignore[no-untyped-def]
    for spec in specs():
        register(spec)
