"""Detection metrics over classified keypoints, counts pooled over the split."""

from __future__ import annotations

import numpy as np
import pytest

from plugins.metrics import detection

from ._helpers import make_pair

CLASSES = np.array([[0, 1, 2], [2, 0, 1], [1, 1, 0]])


def _pair(points: list[tuple[int, int]], labels: list[int], **meta: object):  # type: ignore[no-untyped-def]
    det = {"points": np.array(points, int).reshape(-1, 2), "labels": np.array(labels, int)}
    return make_pair(None, None, ref_classes=CLASSES, detections=det, meta=meta)


def test_counts_and_scores() -> None:
    specs = {s.name: s for s in detection.specs()}
    # truth (positive class 1): (0,1) T, (1,2) T, (2,0) T, (0,0) F, (1,0) F
    pair = _pair([(0, 1), (1, 2), (2, 0), (0, 0), (1, 0)], [1, 1, 0, 1, 0])
    stats = specs["detection_f1"].statistics(pair)
    assert stats == {"tp": 2.0, "fp": 1.0, "tn": 1.0, "fn": 1.0}
    values = {name: spec.split_values([stats])["value"] for name, spec in specs.items()}
    assert values == pytest.approx(
        {
            "detection_precision": 2 / 3,
            "detection_recall": 2 / 3,
            "detection_f1": 2 / 3,
            "detection_accuracy": 3 / 5,
            "detection_balanced_accuracy": (2 / 3 + 1 / 2) / 2,
        }
    )


def test_positive_classes_from_meta_and_pooling() -> None:
    specs = {s.name: s for s in detection.specs()}
    a = specs["detection_recall"].statistics(_pair([(0, 2), (1, 0)], [1, 0], positive_classes=(2,)))
    b = specs["detection_recall"].statistics(_pair([(0, 1)], [1], positive_classes=(2,)))
    assert specs["detection_recall"].split_values([a, b])["value"] == 0.5  # TP 1, FN 1
    assert specs["detection_precision"].split_values([a, b])["value"] == 0.5  # TP 1, FP 1


def test_empty_conventions() -> None:
    none = detection.detection_scores([{"tp": 0.0, "fp": 0.0, "tn": 0.0, "fn": 0.0}])
    assert set(none.values()) == {1.0}
    negatives_only = detection.detection_scores([{"tp": 0.0, "fp": 0.0, "tn": 3.0, "fn": 0.0}])
    assert negatives_only["precision"] == 1.0 and negatives_only["balanced_accuracy"] == 1.0
    missed = detection.detection_scores([{"tp": 0.0, "fp": 0.0, "tn": 0.0, "fn": 2.0}])
    assert missed["precision"] == 0.0 and missed["recall"] == 0.0 and missed["f1"] == 0.0


def test_points_outside_the_image_are_an_error() -> None:
    spec = detection.specs()[0]
    with pytest.raises(ValueError, match="outside the 3×3 image"):
        spec.statistics(_pair([(3, 0)], [1]))
