"""Misclassification rates and per-class Dice / IoU with their macro mean."""

from __future__ import annotations

import numpy as np
import pytest

from plugins.metrics import classes
from plugins.metrics.classes import (
    dice_per_class,
    iou_per_class,
    misclassification_binary,
    misclassification_multiclass,
)

from ._helpers import make_pair

REF = np.array([[1, 1, 2, 0]])
PRED = np.array([[1, 2, 2, 3]])


def test_misclassification() -> None:
    assert misclassification_multiclass(prediction=PRED, reference=REF) == 0.5
    assert misclassification_binary(prediction=PRED, reference=REF) == 0.25


def test_per_class_and_macro_mean() -> None:
    # class 1: |∩| 1, |P| 1, |R| 2; class 2: |∩| 1, |P| 2, |R| 1; class 3: predicted only.
    assert dice_per_class(prediction=PRED, reference=REF) == pytest.approx(
        {"value": (2 / 3 + 2 / 3 + 0) / 3, "class_1": 2 / 3, "class_2": 2 / 3, "class_3": 0.0}
    )
    assert iou_per_class(prediction=PRED, reference=REF) == pytest.approx(
        {"value": 1 / 3, "class_1": 0.5, "class_2": 0.5, "class_3": 0.0}
    )


def test_absent_classes_are_left_out_and_both_empty_is_one() -> None:
    ref = np.array([[0, 5, 5, 0]])  # class ids need not be contiguous
    assert dice_per_class(prediction=ref, reference=ref) == {"value": 1.0, "class_5": 1.0}
    zeros = np.zeros((2, 2), int)
    assert dice_per_class(prediction=zeros, reference=zeros) == {"value": 1.0}
    assert iou_per_class(prediction=zeros, reference=zeros) == {"value": 1.0}


def test_records_respect_ignore_and_reduce_per_class() -> None:
    specs = {s.name: s for s in classes.specs()}
    ignore = np.array([[False, False, False, True]])  # hides the predicted-only class 3
    pair = make_pair(ref_classes=REF, pred_classes=PRED, ignore=ignore)
    stats = specs["dice_per_class"].statistics(pair)
    assert stats["value"] == pytest.approx(2 / 3)
    other = specs["dice_per_class"].statistics(make_pair(ref_classes=REF, pred_classes=REF))
    split = specs["dice_per_class"].split_values([stats, other])
    assert split == pytest.approx(
        {"value": (2 / 3 + 1) / 2, "class_1": (2 / 3 + 1) / 2, "class_2": (2 / 3 + 1) / 2}
    )
    assert specs["misclassification_multiclass"].statistics(pair)["value"] == pytest.approx(1 / 3)
    assert specs["dice_per_class"].reference_requires == {"classes"}


def test_bad_class_maps() -> None:
    with pytest.raises(ValueError, match="non-negative integers"):
        dice_per_class(prediction=PRED * 0.5, reference=REF)
    with pytest.raises(ValueError, match="differs"):
        dice_per_class(prediction=PRED, reference=REF.T)
