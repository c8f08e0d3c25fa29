"""Fixtures for the metric tests: the hand-worked split / merge / cover cases."""

from __future__ import annotations

import numpy as np
import pytest

from ._helpers import boxes


@pytest.fixture
def split_pair() -> tuple[np.ndarray, np.ndarray]:
    """One 4×8 reference object (id 1) split by the prediction into halves (ids 5 and 1000)."""
    ref = boxes((10, 12), (1, 2, 6, 2, 10))
    pred = boxes((10, 12), (5, 2, 6, 2, 6), (1000, 2, 6, 6, 10))
    return pred, ref


@pytest.fixture
def merge_pair() -> tuple[np.ndarray, np.ndarray]:
    """Two touching 4×4 reference objects (ids 2 and 7) merged into one prediction (id 300)."""
    ref = boxes((10, 12), (2, 2, 6, 2, 6), (7, 2, 6, 6, 10))
    pred = boxes((10, 12), (300, 2, 6, 2, 10))
    return pred, ref


@pytest.fixture
def cover_pair() -> tuple[np.ndarray, np.ndarray]:
    """A 6×6 prediction (id 4) covering a whole 3×3 reference object (id 9): IoU = 9/36."""
    ref = boxes((10, 10), (9, 2, 5, 2, 5))
    pred = boxes((10, 10), (4, 1, 7, 1, 7))
    return pred, ref
