"""Turning a foreground score or mask into instances: one composable, recorded step.

Every method (classical or deep) that produces a foreground score map reaches instances through
:func:`postprocess`, and records the :class:`PostProcess` parameters with its results.  Steps, in
order: threshold (fixed, Otsu, or hysteresis) → fill holes → remove small objects → connected
components or watershed split of touching objects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import apply_hysteresis_threshold, threshold_otsu
from skimage.segmentation import watershed

ThresholdKind = Literal["fixed", "otsu", "hysteresis"]
SplitKind = Literal["none", "watershed"]


@dataclass(frozen=True)
class PostProcess:
    """Parameters of the score → instances step (all recorded with results).

    ``threshold``: ``fixed`` (score > ``level``), ``otsu`` (score > Otsu level) or
    ``hysteresis`` (pixels > ``low`` connected to a seed > ``high``).  ``split``: ``none``
    (connected components) or ``watershed`` on the distance transform, seeded by maxima at
    least ``min_distance`` apart, to separate touching objects.
    """

    threshold: ThresholdKind = "fixed"
    level: float = 0.5
    low: float = 0.3
    high: float = 0.7
    fill_holes: bool = True
    min_size: int = 10
    split: SplitKind = "none"
    min_distance: int = 4

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def named(cls, name: str) -> PostProcess:
        """Presets: ``cc`` (fixed 0.5 + components), ``otsu``, ``hysteresis``, ``watershed``."""
        presets = {
            "cc": cls(),
            "otsu": cls(threshold="otsu"),
            "hysteresis": cls(threshold="hysteresis"),
            "watershed": cls(split="watershed"),
            "otsu_watershed": cls(threshold="otsu", split="watershed"),
        }
        if name not in presets:
            raise ValueError(f"unknown post-processing {name!r}; choose from {', '.join(presets)}")
        return presets[name]


def binarize(score: np.ndarray, params: PostProcess) -> np.ndarray:
    score = np.asarray(score, dtype=np.float64)
    if score.dtype == bool or params.threshold == "fixed":
        return score > params.level
    if params.threshold == "otsu":
        if float(score.min()) == float(score.max()):
            return np.zeros(score.shape, dtype=bool)
        return score > threshold_otsu(score)
    if params.threshold == "hysteresis":
        if params.low > params.high:
            raise ValueError(f"hysteresis needs low <= high, got {params.low} > {params.high}")
        return apply_hysteresis_threshold(score, params.low, params.high)  # type: ignore[no-any-return]
    raise ValueError(f"unknown threshold {params.threshold!r}")


def remove_small(mask: np.ndarray, min_size: int) -> np.ndarray:
    """Drop 8-connected components with fewer than ``min_size`` pixels."""
    if min_size <= 1 or not mask.any():
        return mask
    labels, _ = ndi.label(mask, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_size
    keep[0] = False
    return keep[labels]  # type: ignore[no-any-return]


def split_touching(mask: np.ndarray, min_distance: int) -> np.ndarray:
    """Watershed on the negative distance transform, one seed per regional maximum plateau."""
    distance = ndi.distance_transform_edt(mask)
    size = 2 * min_distance + 1
    peaks = (distance == ndi.maximum_filter(distance, size=size)) & mask & (distance > 0)
    markers, _ = ndi.label(peaks, structure=np.ones((3, 3)))
    return watershed(-distance, markers, mask=mask).astype(np.int32)  # type: ignore[no-any-return]


def postprocess(score: np.ndarray, params: PostProcess | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (foreground bool H×W, instances int32 H×W) from a score map or mask."""
    params = params or PostProcess()
    mask = binarize(score, params)
    if params.fill_holes:
        mask = ndi.binary_fill_holes(mask)
    mask = remove_small(mask, params.min_size)
    if params.split == "watershed":
        instances = split_touching(mask, params.min_distance)
    else:
        instances, _ = ndi.label(mask)
    return mask, instances.astype(np.int32)
