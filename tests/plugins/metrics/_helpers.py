"""Tiny label images drawn box by box, and ImagePairs around them."""

from __future__ import annotations

import numpy as np

from harness import ImagePair, Prediction, Sample


def boxes(shape: tuple[int, int], *items: tuple[int, int, int, int, int]) -> np.ndarray:
    """An int32 label image with each (id, row0, row1, col0, col1) box painted in order."""
    out = np.zeros(shape, dtype=np.int32)
    for label, r0, r1, c0, c1 in items:
        out[r0:r1, c0:c1] = label
    return out


def make_pair(
    prediction: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    *,
    pred_classes: np.ndarray | None = None,
    ref_classes: np.ndarray | None = None,
    ignore: np.ndarray | None = None,
    meta: dict | None = None,
    **extra: object,
) -> ImagePair:
    shape = (reference if reference is not None else ref_classes).shape  # type: ignore[union-attr]
    sample = Sample(id="s", image=np.zeros((*shape, 3), np.uint8), instances=reference,
                    classes=ref_classes, ignore=ignore, meta=meta or {})
    return ImagePair(Prediction(instances=prediction, classes=pred_classes, **extra), sample)
