"""Every metric family registers through its own entry point, with a complete record."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.plugins import build_registry

from ._helpers import boxes, make_pair

FAMILIES = {
    "metrics.classes": {
        "misclassification_binary",
        "misclassification_multiclass",
        "dice_per_class",
        "iou_per_class",
    },
    "metrics.glas": {"object_f1", "object_dice", "object_hausdorff"},
    "metrics.instance": {"dsb_map", "aji", "aji_pooled", "aji_plus", "f1_at_iou"},
    "metrics.panoptic": {"pq", "dq", "sq", "pq_pooled", "mpq", "bpq"},
    "metrics.boundary": {"hd", "hd95", "nsd"},
    "metrics.counting": {"count_rmse", "count_mae"},
    "metrics.clustering": {"cluster_dice"},
    "metrics.detection": {
        "detection_precision",
        "detection_recall",
        "detection_f1",
        "detection_accuracy",
        "detection_balanced_accuracy",
    },
}


def test_entry_points_register_every_metric() -> None:
    registry = build_registry(env={})
    table = registry.table("metric")
    for entry_point, names in FAMILIES.items():
        for name in names:
            assert table[name].source.entry_point == entry_point, name
            spec = table[name].obj
            assert spec.description and spec.level in ("image", "split")


def test_every_applicable_metric_gives_flat_finite_statistics() -> None:
    registry = build_registry(env={})
    ref = boxes((16, 16), (3, 0, 5, 0, 5), (900, 8, 14, 8, 16))
    pred = boxes((16, 16), (1, 1, 5, 0, 6), (2, 9, 12, 9, 12), (4, 14, 16, 0, 3))
    det = {"points": np.array([[0, 0], [9, 9]]), "labels": np.array([1, 0])}
    pair = make_pair(
        pred,
        ref,
        pred_classes=(pred > 0) * 1,
        ref_classes=(ref > 0) * 2,
        clusters=pred % 3,
        detections=det,
    )
    provides = pair.prediction.provides()
    reference = frozenset({"foreground", "instances", "classes"})
    names = set().union(*FAMILIES.values())
    for name in sorted(names):
        spec = registry.metric(name)
        assert spec.applicable(provides, reference), name
        stats = spec.statistics(pair)
        assert all(
            isinstance(k, str) and isinstance(v, float) and math.isfinite(v)
            for k, v in stats.items()
        ), name
        value = spec.split_values([stats, stats])["value"]
        lo, hi = spec.range
        assert lo <= value <= hi, name


def test_no_reducer_invents_a_value_for_an_empty_split() -> None:
    registry = build_registry(env={})
    for name in sorted(set().union(*FAMILIES.values())):
        with pytest.raises(ValueError, match="no images"):
            registry.metric(name).reduce([])
