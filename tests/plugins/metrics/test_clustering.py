"""cluster_dice: Hungarian assignment of clusters to classes, surplus clusters score 0."""

from __future__ import annotations

import numpy as np
import pytest

from plugins.metrics import clustering
from plugins.metrics.clustering import cluster_dice

from ._helpers import boxes, make_pair

REF = np.array([[0, 0, 1, 1], [0, 0, 1, 1]])
CLUSTERS = np.array([[7, 7, 3, 3], [7, 5, 3, 3]])


def test_assignment_and_value() -> None:
    # Dice: 7~0 = 6/7, 3~1 = 1, 5~0 = 2/5; best one-to-one: 7->0, 3->1; 5 is surplus.
    assert cluster_dice(prediction=CLUSTERS, reference=REF) == pytest.approx(
        {"value": (6 / 7 + 1) / 3, "cluster_3": 1.0, "cluster_5": -1.0, "cluster_7": 0.0}
    )


def test_labels_carry_no_meaning() -> None:
    swapped = np.where(REF == 0, 1, 0)
    assert cluster_dice(prediction=swapped, reference=REF)["value"] == 1.0


def test_more_classes_than_clusters_divides_by_the_classes() -> None:
    ref = np.array([[0, 1, 2, 2]])
    one = np.zeros((1, 4), int)
    # the single cluster takes class 2 (Dice 2·2/6) over class 0 (2·1/5); two classes unmatched
    assert cluster_dice(prediction=one, reference=ref)["value"] == pytest.approx((2 / 3) / 3)


def test_record_falls_back_to_foreground() -> None:
    ref = boxes((4, 4), (9, 0, 2, 0, 4))
    clusters = np.where(ref > 0, 4, 8)
    pair = make_pair(None, ref, clusters=clusters)
    stats = clustering.CLUSTER_DICE.statistics(pair)
    assert stats == {"value": 1.0, "cluster_4": 1.0, "cluster_8": 0.0}
    with pytest.raises(ValueError, match="cluster map"):
        clustering.CLUSTER_DICE.statistics(make_pair(None, ref))
