"""Turning a foreground score or mask into instances: one composable, recorded step.

Every method (classical or deep) that produces a foreground score map reaches instances through
:func:`postprocess`, and records the :class:`PostProcess` parameters with its results
(``Prediction.extras["postprocess"]``).  Steps, in order: threshold (fixed, Otsu, hysteresis, or
``given``: the method hands over its own mask) → fill holes → remove small objects → connected
components, or a watershed split of touching objects on the distance transform (``watershed``)
or on the score map itself (``score_watershed``).  :func:`majority_filter` smooths class maps.

Methods name their post-processing by preset (``otsu(postprocess="watershed")``) so that the
parameter stays a plain string on the command line; :meth:`PostProcess.named` resolves it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
import skimage  # its submodules load on first use (lazily), so importing this module stays cheap
from scipy import ndimage as ndi

ThresholdKind = Literal["fixed", "otsu", "hysteresis", "given"]
SplitKind = Literal["none", "watershed", "score_watershed"]

_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class PostProcess:
    """Parameters of the score → instances step (all recorded with results).

    ``threshold``: ``fixed`` (score > ``level``), ``otsu`` (score > Otsu level),
    ``hysteresis`` (pixels > ``low`` connected to a seed > ``high``) or ``given`` (the method
    passes its own foreground mask).  ``split``: ``none`` (8-connected components),
    ``watershed`` on the distance transform, or ``score_watershed`` on the score map smoothed by
    ``smooth`` pixels; both seed one object per regional maximum at least ``min_distance`` apart.
    """

    threshold: ThresholdKind = "fixed"
    level: float = 0.5
    low: float = 0.3
    high: float = 0.7
    fill_holes: bool = True
    min_size: int = 10
    split: SplitKind = "none"
    min_distance: int = 4
    smooth: float = 1.0

    def __post_init__(self) -> None:
        if self.threshold not in ("fixed", "otsu", "hysteresis", "given"):
            raise ValueError(f"unknown threshold {self.threshold!r}; use fixed, otsu, hysteresis or given")
        if self.split not in ("none", "watershed", "score_watershed"):
            raise ValueError(f"unknown split {self.split!r}; use none, watershed or score_watershed")
        if self.threshold == "hysteresis" and self.low > self.high:
            raise ValueError(f"hysteresis needs low <= high, got {self.low} > {self.high}")
        if self.min_distance < 1:
            raise ValueError(f"min_distance must be >= 1, got {self.min_distance}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def presets(cls) -> dict[str, PostProcess]:
        return {
            "cc": cls(),
            "otsu": cls(threshold="otsu"),
            "hysteresis": cls(threshold="hysteresis"),
            "watershed": cls(split="watershed"),
            "otsu_watershed": cls(threshold="otsu", split="watershed"),
            "score_watershed": cls(split="score_watershed"),
            "raw": cls(fill_holes=False, min_size=0),
        }

    @classmethod
    def named(cls, name: str) -> PostProcess:
        """Presets: ``cc`` (fixed 0.5, fill holes, drop objects < 10 px, components), ``otsu``,
        ``hysteresis``, ``watershed``, ``otsu_watershed``, ``score_watershed``, ``raw`` (no hole
        filling or size filter)."""
        presets = cls.presets()
        if name not in presets:
            raise ValueError(f"unknown post-processing {name!r}; choose from {', '.join(presets)}")
        return presets[name]

    @classmethod
    def for_mask(cls, name: str, **overrides: Any) -> PostProcess:
        """A preset for a method that makes its own foreground mask (threshold ``given``).

        Presets that choose a threshold (``otsu``, ``hysteresis``…) make no sense there and are
        refused with the list of those that do.
        """
        usable = [n for n, p in cls.presets().items() if p.threshold == "fixed"]
        if name not in usable:
            raise ValueError(
                f"post-processing {name!r} does not apply to a method that makes its own mask; "
                f"choose from {', '.join(usable)}"
            )
        return replace(cls.named(name), threshold="given", **overrides)


def binarize(score: np.ndarray, params: PostProcess) -> np.ndarray:
    """Foreground mask of a score map; a boolean map is taken as the mask itself."""
    score = np.asarray(score)
    if score.dtype == bool:
        return score.copy()
    if params.threshold == "given":
        raise ValueError("threshold 'given' needs a boolean mask (or foreground=) as input")
    score = score.astype(np.float64, copy=False)
    if params.threshold == "fixed":
        return score > params.level
    if params.threshold == "otsu":
        if float(score.min()) == float(score.max()):
            return np.zeros(score.shape, dtype=bool)
        return score > skimage.filters.threshold_otsu(score)
    return skimage.filters.apply_hysteresis_threshold(score, params.low, params.high)  # type: ignore[no-any-return]


def remove_small(mask: np.ndarray, min_size: int) -> np.ndarray:
    """Drop 8-connected components with fewer than ``min_size`` pixels."""
    if min_size <= 1 or not mask.any():
        return mask
    labels, _ = ndi.label(mask, structure=_EIGHT)
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_size
    keep[0] = False
    return keep[labels]  # type: ignore[no-any-return]


def _seeded_watershed(relief: np.ndarray, mask: np.ndarray, min_distance: int) -> np.ndarray:
    """Flood ``-relief`` inside ``mask`` from one seed per regional-maximum plateau."""
    size = 2 * min_distance + 1
    peaks = (relief == ndi.maximum_filter(relief, size=size)) & mask
    markers, _ = ndi.label(peaks, structure=_EIGHT)
    labels = skimage.segmentation.watershed(-relief, markers, mask=mask)
    # a component without a seed (possible only at plateau edges) keeps its own label
    orphans, n = ndi.label(mask & (labels == 0), structure=_EIGHT)
    if n:
        labels = np.where(orphans > 0, orphans + labels.max(), labels)
    return labels.astype(np.int32)  # type: ignore[no-any-return]


def split_touching(mask: np.ndarray, min_distance: int) -> np.ndarray:
    """Watershed on the negative distance transform, one seed per regional maximum plateau."""
    distance = ndi.distance_transform_edt(mask)
    return _seeded_watershed(distance, mask & (distance > 0), min_distance)


def split_on_score(score: np.ndarray, mask: np.ndarray, min_distance: int, smooth: float) -> np.ndarray:
    """Watershed on the (smoothed) score map: objects meet along valleys of the score.

    A score that is constant inside the mask (e.g. a boolean map) carries no relief; the
    distance transform is used instead.
    """
    values = np.asarray(score, dtype=np.float64)
    inside = values[mask]
    if inside.size == 0 or float(inside.min()) == float(inside.max()):
        return split_touching(mask, min_distance)
    if smooth > 0:
        values = ndi.gaussian_filter(values, smooth)
    return _seeded_watershed(values, mask, min_distance)


def majority_filter(labels: np.ndarray, size: int) -> np.ndarray:
    """Replace each label by the most frequent label in its ``size``×``size`` window.

    Ties go to the smallest label.  ``size`` <= 1 returns a copy; the window is clipped at the
    image border (counts are taken over the pixels inside the image).
    """
    labels = np.asarray(labels)
    if size <= 1:
        return labels.copy()
    values = np.unique(labels)
    best = np.full(labels.shape, -1.0, dtype=np.float32)
    out = np.zeros_like(labels)
    for value in values:  # ascending, and strict '>' keeps the smallest label on ties
        count = ndi.uniform_filter((labels == value).astype(np.float32), size, mode="constant")
        better = count > best + 1e-6
        out[better] = value
        best = np.where(better, count, best)
    return out


def postprocess(
    score: np.ndarray,
    params: PostProcess | None = None,
    foreground: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (foreground bool H×W, instances int32 H×W) from a score map or mask.

    ``foreground`` (optional) is a mask the method made itself; it replaces the threshold step
    and ``score`` then only guides ``score_watershed``.
    """
    params = params or PostProcess()
    if foreground is not None:
        mask = np.asarray(foreground, dtype=bool)
        if mask.shape != np.shape(score):
            raise ValueError(f"foreground shape {mask.shape} differs from score {np.shape(score)}")
    else:
        mask = binarize(score, params)
    if params.fill_holes:
        mask = ndi.binary_fill_holes(mask)
    mask = remove_small(mask, params.min_size)
    if params.split == "watershed":
        instances = split_touching(mask, params.min_distance)
    elif params.split == "score_watershed":
        instances = split_on_score(score, mask, params.min_distance, params.smooth)
    else:
        instances, _ = ndi.label(mask, structure=_EIGHT)
    return mask, instances.astype(np.int32)
