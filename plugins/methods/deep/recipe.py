"""The training recipe of the semantic deep methods, apart from the network.

- **Separation-aware target** (``encoding="rim"``): background 0, object interior 1, object
  rim 2.  The rim is every object pixel within ``rim`` pixels (square window) of a pixel of
  another label (background or another object), so two touching objects are parted by their
  rims.  Instances are decoded by growing the connected components of the interior into the
  foreground with a watershed (:func:`decode_rim`).
- **Scale**: training and prediction at ``scale`` × the image size, so a training crop holds
  whole objects; ``scale=0`` resolves from the median object diameter of the training masks.
- **Model selection** on a validation part of the training data with the dataset's primary
  metric (:func:`selection_score`), and the decoding thresholds chosen there
  (:func:`choose_decoding`).

Everything resolved from the data is returned as plain values that the method records.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi

#: Selection metrics a deep method can optimise on validation (higher is better).
SELECTION_METRICS = ("dice", "object_f1", "dsb_map", "aji")

_EIGHT = np.ones((3, 3), dtype=bool)


# ---- target encoding ----------------------------------------------------------------------


def rim_encoding(instances: np.ndarray, rim: int) -> np.ndarray:
    """Class map 0 background / 1 interior / 2 rim of an instance map (0 = background).

    An object pixel is interior when every pixel of the (2·rim+1)² window around it that lies
    inside the image carries its own label; otherwise it is rim.  The image border itself does
    not make a rim (an object cut by the border is not split there)."""
    labels = np.asarray(instances)
    if rim < 1:
        raise ValueError(f"rim must be >= 1 pixel, got {rim}")
    size = 2 * rim + 1
    low = ndi.minimum_filter(labels, size=size, mode="nearest")
    high = ndi.maximum_filter(labels, size=size, mode="nearest")
    out = np.zeros(labels.shape, dtype=np.int64)
    objects = labels > 0
    out[objects] = 2
    out[objects & (low == high)] = 1
    return out


# ---- decoding -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Decode:
    """Thresholds of the rim decoding (chosen on validation, recorded with results).

    ``foreground``: an object pixel has P(interior) + P(rim) > this; ``interior``: a seed pixel
    has P(interior) > this; ``min_size``: objects (and seeds) smaller than this many pixels of
    the original image are dropped."""

    foreground: float = 0.5
    interior: float = 0.5
    min_size: int = 10

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def as_array(self) -> np.ndarray:
        return np.array([self.foreground, self.interior, self.min_size], dtype=np.float64)

    @classmethod
    def from_array(cls, values: np.ndarray) -> Decode:
        a = np.asarray(values, dtype=np.float64).ravel()
        return cls(float(a[0]), float(a[1]), int(a[2]))


def _drop_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    if min_size <= 1 or labels.max() == 0:
        return labels
    sizes = np.bincount(labels.ravel())
    small = sizes < min_size
    small[0] = False
    return np.where(small[labels], 0, labels)


def decode_rim(
    probabilities: np.ndarray, params: Decode | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(foreground bool H×W, instances int32 H×W) from 3×H×W class probabilities.

    Seeds are the 8-connected components of P(interior) > ``interior`` inside the foreground;
    each grows into the foreground (holes filled) by a watershed on −P(interior).  Foreground
    components holding no seed become objects of their own; objects under ``min_size`` go."""
    from skimage.segmentation import watershed

    params = params or Decode()
    p = np.asarray(probabilities, dtype=np.float32)
    if p.ndim != 3 or p.shape[0] != 3:
        raise ValueError(f"decode_rim expects 3×H×W probabilities, got shape {p.shape}")
    foreground = ndi.binary_fill_holes(p[1] + p[2] > params.foreground)
    seeds = (p[1] > params.interior) & foreground
    markers, _ = ndi.label(seeds, structure=_EIGHT)
    markers = _drop_small(markers, max(1, params.min_size // 4))
    labels = watershed(-p[1], markers, mask=foreground) if markers.any() else markers
    orphans, n = ndi.label(foreground & (labels == 0), structure=_EIGHT)
    if n:
        labels = np.where(orphans > 0, orphans + labels.max(), labels)
    labels = _drop_small(labels.astype(np.int32), params.min_size)
    relabelled = np.zeros_like(labels)
    ids = np.unique(labels)
    ids = ids[ids > 0]
    lookup = np.zeros(int(labels.max()) + 1, dtype=np.int32)
    lookup[ids] = np.arange(1, len(ids) + 1, dtype=np.int32)
    relabelled = lookup[labels]
    return relabelled > 0, relabelled


# ---- scale --------------------------------------------------------------------------------


def median_diameter(instance_maps: Sequence[np.ndarray]) -> float:
    """Median equivalent-circle diameter (pixels) of the objects of the given instance maps
    (0 when there are none)."""
    areas: list[np.ndarray] = []
    for labels in instance_maps:
        counts = np.bincount(np.asarray(labels).ravel().astype(np.int64))[1:]
        areas.append(counts[counts > 0])
    if not areas or not sum(a.size for a in areas):
        return 0.0
    return float(2.0 * np.sqrt(np.median(np.concatenate(areas)) / np.pi))


def auto_scale(diameter: float) -> float:
    """0.5 for large objects (median diameter >= 64 px: glands), else 1 (nuclei, cells)."""
    return 0.5 if diameter >= 64 else 1.0


def auto_rim(diameter: float, scale: float) -> int:
    """About a twelfth of the median object diameter at the training scale, 1 to 4 pixels."""
    return int(np.clip(round(diameter * scale / 12.0), 1, 4))


def resize(array: np.ndarray, shape: tuple[int, int], nearest: bool) -> np.ndarray:
    """Resize H×W(×C) to ``shape`` (area/linear for images, nearest for label maps)."""
    import cv2

    h, w = shape
    if array.shape[:2] == (h, w):
        return array
    if nearest:
        source = np.asarray(array)
        rows = np.minimum(((np.arange(h) + 0.5) * source.shape[0] / h).astype(np.int64), source.shape[0] - 1)
        cols = np.minimum(((np.arange(w) + 0.5) * source.shape[1] / w).astype(np.int64), source.shape[1] - 1)
        return source[rows[:, None], cols[None, :]]
    shrink = h < array.shape[0]
    mode = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(array), (w, h), interpolation=mode)  # type: ignore[no-any-return]


def scaled_shape(shape: tuple[int, ...], scale: float) -> tuple[int, int]:
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


# ---- model selection ----------------------------------------------------------------------


def resolve_selection(select: str, primary_metrics: Sequence[str], has_instances: bool) -> str:
    """``auto``: the dataset's first primary metric that is a selection metric, else object F1
    for instance references and Dice otherwise."""
    if select != "auto":
        if select not in SELECTION_METRICS:
            raise ValueError(
                f"select must be auto or one of {', '.join(SELECTION_METRICS)}; got {select!r}"
            )
        return select
    for name in primary_metrics:
        if name in SELECTION_METRICS and (has_instances or name == "dice"):
            return name
    return "object_f1" if has_instances else "dice"


def selection_references(metric: str, samples: Sequence[Any]) -> list[np.ndarray]:
    """The reference label maps ``metric`` is scored against: the foreground (as 0/1) for
    Dice, the instance maps otherwise."""
    if metric == "dice":
        return [np.asarray(s.foreground).astype(np.int32) for s in samples]
    return [np.asarray(s.instances) for s in samples]


def selection_score(
    metric: str, predictions: Sequence[np.ndarray], references: Sequence[np.ndarray]
) -> float:
    """The split value of ``metric`` over (predicted, reference) label maps, as the
    leaderboard reduces it: object F1 pools counts over the split, the others average."""
    from plugins.metrics.glas import object_f1_statistics, reduce_object_f1
    from plugins.metrics.instance import aji, dsb_map
    from plugins.metrics.matching import overlap_table
    from plugins.metrics.pixel import dice

    if metric == "object_f1":
        stats = [
            object_f1_statistics(overlap_table(prediction=p, reference=r))
            for p, r in zip(predictions, references)
        ]
        return float(reduce_object_f1(stats)["value"])
    if metric == "dsb_map":
        return float(np.mean([dsb_map(prediction=p, reference=r) for p, r in zip(predictions, references)]))
    if metric == "aji":
        return float(np.mean([aji(prediction=p, reference=r) for p, r in zip(predictions, references)]))
    return float(
        np.mean([dice(prediction=p > 0, reference=r > 0) for p, r in zip(predictions, references)])
    )


#: Decoding thresholds tried on validation.  The v4 leaderboards chose the top of a narrower
#: grid (0.4-0.6 for both thresholds, 10-800 px objects) on DSB2018 and GlaS, so the grid
#: reaches past where those choices fell.
FOREGROUND_LEVELS = (0.4, 0.5, 0.6, 0.7, 0.8)
INTERIOR_LEVELS = (0.3, 0.45, 0.6, 0.7, 0.8)
#: Smallest object kept, as a fraction of the median object area of the training masks (so the
#: same grid serves 300-pixel nuclei and 12,000-pixel glands).
MIN_SIZE_FRACTIONS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.35)


def min_sizes(diameter: float) -> tuple[int, ...]:
    """The ``min_size`` values tried for objects of median equivalent ``diameter`` (pixels of
    the original image): :data:`MIN_SIZE_FRACTIONS` of the circle area, rounded, without
    repeats (0 keeps every object)."""
    area = np.pi * max(0.0, float(diameter)) ** 2 / 4.0
    return tuple(sorted({int(round(f * area)) for f in MIN_SIZE_FRACTIONS}))


def decoding_grid(diameter: float) -> list[Decode]:
    """Every decoding :func:`choose_decoding` tries, lower thresholds and sizes first."""
    return [
        Decode(fg, interior, size)
        for fg, interior, size in itertools.product(FOREGROUND_LEVELS, INTERIOR_LEVELS, min_sizes(diameter))
    ]


def choose_decoding(
    metric: str,
    probabilities: Sequence[np.ndarray],
    references: Sequence[np.ndarray],
    diameter: float,
) -> tuple[Decode, float, list[tuple[dict[str, Any], float]]]:
    """The decoding of :func:`decoding_grid` with the best validation ``metric`` (ties: the
    earlier, i.e. lower thresholds and smaller ``min_size``); returns it, its score and every
    (params, score)."""
    tried: list[tuple[dict[str, Any], float]] = []
    best, best_score = Decode(), float("-inf")
    for params in decoding_grid(diameter):
        labels = [decode_rim(p, params)[1] for p in probabilities]
        score = selection_score(metric, labels, references)
        tried.append((params.as_dict(), score))
        if score > best_score:
            best, best_score = params, score
    return best, best_score, tried
