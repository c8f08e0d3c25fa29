"""Pixel Dice, IoU and accuracy on hand-made masks."""

from __future__ import annotations

import numpy as np
import pytest

from plugins.metrics.pixel import dice, iou, pixel_accuracy


def masks() -> tuple[np.ndarray, np.ndarray]:
    ref = np.zeros((4, 5), dtype=np.int32)
    ref[0:2, 0:3] = 7  # 6 pixels
    pred = np.zeros((4, 5), dtype=np.int32)
    pred[1:3, 1:3] = 300  # 4 pixels; overlap rows 1, cols 1-2 = 2 pixels
    return pred, ref


def test_hand_computed_overlap() -> None:
    pred, ref = masks()
    assert dice(prediction=pred, reference=ref) == pytest.approx(2 * 2 / (4 + 6))
    assert iou(prediction=pred, reference=ref) == pytest.approx(2 / 8)
    # wrong pixels: 4 + 6 - 2·2 = 6 of 20
    assert pixel_accuracy(prediction=pred > 0, reference=ref > 0) == pytest.approx(14 / 20)


def test_empty_conventions() -> None:
    empty = np.zeros((3, 3), dtype=np.int32)
    full = np.ones((3, 3), dtype=np.int32)
    assert dice(prediction=empty, reference=empty) == 1.0
    assert iou(prediction=empty, reference=empty) == 1.0
    assert dice(prediction=full, reference=empty) == 0.0
    assert iou(prediction=empty, reference=full) == 0.0


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"prediction shape \(2, 2\) differs from reference shape \(3, 3\)"):
        dice(prediction=np.zeros((2, 2)), reference=np.zeros((3, 3)))
