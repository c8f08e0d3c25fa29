"""Boundary distances between foregrounds: Hausdorff (hd), 95th-percentile Hausdorff (hd95)
and normalized surface Dice (nsd).

Boundary of a mask = mask pixels with a 4-neighbour outside the mask; pixels on the image
border count as boundary.  Distances are Euclidean, in the dataset's pixel spacing (pixels
when it gives none), computed exactly within the bounding box of both boundaries
(:mod:`plugins.metrics.nearest`; scipy's transform for anisotropic spacing).  Empty policy
(METRICS.md): both empty -> hd = hd95 = 0, nsd = 1; exactly one empty -> hd = hd95 = the
image diagonal, nsd = 0.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from harness import ImagePair, MetricSpec, hookimpl
from plugins.metrics.nearest import (
    OFFSET_REACH,
    Target,
    boundary,
    squared_distances,
    target_points,
)
from plugins.metrics.pixel import foreground_pair, paired_arrays

#: Default NSD tolerance in the distance unit (pixels unless the dataset gives a spacing).
NSD_TOLERANCE = 2.0


class SurfaceDistances:
    """Directed distances between two non-empty boundaries, resolved only as far as a
    statistic needs them.

    With isotropic spacing the offsets answer every boundary pixel within
    √``OFFSET_REACH`` px of the other boundary exactly; the few farther ones (an object
    missed altogether) are kept aside: hd asks only for their largest distance, hd95 needs
    them only when they reach its percentile, and nsd only when its tolerance is that large.
    Anisotropic spacing takes scipy's float64 transform of the window for everything.
    """

    def __init__(self, bp: np.ndarray, br: np.ndarray, spacing: tuple[float, float]) -> None:
        self.bp, self.br, self.spacing = bp, br, spacing
        self._targets: dict[int, Target] = {}
        self.isotropic = spacing[0] == spacing[1] and math.hypot(*bp.shape) < 2000
        if self.isotropic:
            # direction 0: ∂P pixels to ∂R; direction 1: ∂R pixels to ∂P (squared, -1 = far)
            self.d2 = [
                squared_distances(br, bp, thin=True, resolve=False),
                squared_distances(bp, br, thin=True, resolve=False),
            ]
        else:
            self.exact = [
                ndi.distance_transform_edt(~br, sampling=spacing)[bp],
                ndi.distance_transform_edt(~bp, sampling=spacing)[br],
            ]

    def _pairs(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        return (self.bp, self.br) if k == 0 else (self.br, self.bp)

    def _target(self, k: int) -> Target:
        """The k-d tree on the boundary direction k measures to (built once)."""
        if k not in self._targets:
            self._targets[k] = target_points(self._pairs(k)[1], thin=True)
        return self._targets[k]

    def _far(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(positions in direction k, rows, cols) of its pixels beyond the offsets' reach."""
        at, _ = self._pairs(k)
        far = np.flatnonzero(self.d2[k] < 0)
        rows, cols = np.divmod(np.flatnonzero(at)[far], at.shape[1])
        return far, rows, cols

    def distances(self, k: int) -> np.ndarray:
        """Every distance of direction k (float64, spacing units)."""
        if not self.isotropic:
            return self.exact[k]  # type: ignore[no-any-return]
        d2 = self.d2[k]
        if d2.size and d2.min() < 0:
            far, rows, cols = self._far(k)
            d2 = d2.copy()
            d2[far] = self._target(k).squared(rows, cols)
            self.d2[k] = d2
        return np.sqrt(d2.astype(np.float64)) * self.spacing[0]  # type: ignore[no-any-return]

    def hd(self) -> float:
        if not self.isotropic:
            return float(max(d.max() for d in self.exact))
        top = 0
        for k, d2 in enumerate(self.d2):
            if d2.min() < 0:  # the largest is among the far pixels
                _, rows, cols = self._far(k)
                top = max(top, self._target(k).max_squared(rows, cols))
            else:
                top = max(top, int(d2.max()))
        return math.sqrt(top) * self.spacing[0]

    def hd95(self) -> float:
        values = []
        for k in range(2):
            if self.isotropic:
                d2 = self.d2[k]
                n_far = int(np.count_nonzero(d2 < 0))
                # the two order statistics the percentile interpolates must both be near ones
                # (one index of margin for the rounding of 0.95 (n - 1))
                if n_far and int(0.95 * (d2.size - 1)) + 2 < d2.size - n_far:
                    near = np.where(d2 < 0, np.iinfo(np.int64).max, d2)  # far: any larger value
                    scaled = np.sqrt(near.astype(np.float64)) * self.spacing[0]
                    values.append(float(np.percentile(scaled, 95)))
                    continue
            values.append(float(np.percentile(self.distances(k), 95)))
        return max(values)

    def nsd(self, tolerance: float) -> float:
        within = 0
        for k in range(2):
            if self.isotropic and tolerance < math.sqrt(OFFSET_REACH) * self.spacing[0]:
                d2 = self.d2[k]  # far pixels (-1) lie beyond the tolerance
                scaled = np.sqrt(d2[d2 >= 0].astype(np.float64)) * self.spacing[0]
                within += int(np.count_nonzero(scaled <= tolerance))
            else:
                within += int(np.count_nonzero(self.distances(k) <= tolerance))
        return float(within) / float(self.bp.sum() + self.br.sum())


def surface_distances(
    *, prediction: np.ndarray, reference: np.ndarray, spacing: tuple[float, float] = (1.0, 1.0)
) -> SurfaceDistances | None:
    """The directed boundary distances of a pair, or None if a side has no foreground."""
    p, r = paired_arrays(prediction, reference)
    p, r = p > 0, r > 0
    bp, br = boundary(p), boundary(r)
    if not bp.any() or not br.any():
        return None
    rows = np.flatnonzero(bp.any(axis=1) | br.any(axis=1))
    cols = np.flatnonzero(bp.any(axis=0) | br.any(axis=0))
    win = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    return SurfaceDistances(bp[win], br[win], spacing)


def empty_statistics(
    prediction: np.ndarray, reference: np.ndarray, spacing: tuple[float, float]
) -> dict[str, float]:
    """hd, hd95 and nsd when a side has no foreground (METRICS.md's empty policy)."""
    p_any = bool(np.any(np.asarray(prediction) > 0))
    r_any = bool(np.any(np.asarray(reference) > 0))
    if not p_any and not r_any:
        return {"hd": 0.0, "hd95": 0.0, "nsd": 1.0}
    h, w = np.asarray(reference).shape
    diagonal = math.hypot(h * spacing[0], w * spacing[1])
    return {"hd": diagonal, "hd95": diagonal, "nsd": 0.0}


def boundary_statistics(
    *,
    prediction: np.ndarray,
    reference: np.ndarray,
    spacing: tuple[float, float] = (1.0, 1.0),
    tolerance: float = NSD_TOLERANCE,
) -> dict[str, float]:
    """hd, hd95 and nsd of one image."""
    d = surface_distances(prediction=prediction, reference=reference, spacing=spacing)
    if d is None:
        return empty_statistics(prediction, reference, spacing)
    return {"hd": d.hd(), "hd95": d.hd95(), "nsd": d.nsd(tolerance)}


def hd(
    *, prediction: np.ndarray, reference: np.ndarray, spacing: tuple[float, float] = (1.0, 1.0)
) -> float:
    """Hausdorff distance between the foreground boundaries (max of both directed maxima).

    Lower is better, in pixels or spacing units.  Both empty -> 0; exactly one empty -> the
    image diagonal.  Image level.  Source: Huttenlocher et al., IEEE TPAMI 15(9), 1993.
    """
    return _one("hd", prediction, reference, spacing, NSD_TOLERANCE)


def hd95(
    *, prediction: np.ndarray, reference: np.ndarray, spacing: tuple[float, float] = (1.0, 1.0)
) -> float:
    """95th-percentile Hausdorff: max of the two directed 95th percentiles (linear
    interpolation, as MONAI / Metrics Reloaded; not medpy's pooled percentile).

    Lower is better.  Both empty -> 0; exactly one empty -> the image diagonal.  Image level.
    """
    return _one("hd95", prediction, reference, spacing, NSD_TOLERANCE)


def nsd(
    *,
    prediction: np.ndarray,
    reference: np.ndarray,
    spacing: tuple[float, float] = (1.0, 1.0),
    tolerance: float = NSD_TOLERANCE,
) -> float:
    """Normalized surface Dice at tolerance τ (inclusive; Nikolov et al., JMIR 23(7), 2021):
    (|∂P within τ of ∂R| + |∂R within τ of ∂P|) / (|∂P| + |∂R|).

    Higher is better, range [0, 1].  Both empty -> 1; exactly one empty -> 0.  Image level.
    """
    return _one("nsd", prediction, reference, spacing, tolerance)


def _one(
    key: str,
    prediction: np.ndarray,
    reference: np.ndarray,
    spacing: tuple[float, float],
    tolerance: float,
) -> float:
    """One statistic, computing only the distances it needs."""
    d = surface_distances(prediction=prediction, reference=reference, spacing=spacing)
    if d is None:
        return empty_statistics(prediction, reference, spacing)[key]
    return d.nsd(tolerance) if key == "nsd" else float(getattr(d, key)())


# ---- records -------------------------------------------------------------------------------


def _stats(key: str):  # type: ignore[no-untyped-def]
    def statistics(pair: ImagePair) -> dict[str, float]:
        def compute() -> tuple[SurfaceDistances | None, np.ndarray, np.ndarray]:
            pred, ref = foreground_pair(pair)
            d = surface_distances(prediction=pred, reference=ref, spacing=pair.spacing)
            return d, pred, ref

        d, pred, ref = pair.cached("boundary.distances", compute)
        if d is None:
            return {"value": empty_statistics(pred, ref, pair.spacing)[key]}
        return {"value": d.nsd(NSD_TOLERANCE) if key == "nsd" else float(getattr(d, key)())}

    return statistics


def specs() -> list[MetricSpec]:
    inf = (0.0, math.inf)
    return [
        MetricSpec(
            name="hd",
            higher_is_better=False,
            statistics=_stats("hd"),
            range=inf,
            unit="px",
            citation="Huttenlocher et al., IEEE TPAMI 15(9):850-863, 1993",
            description="Hausdorff distance between foreground boundaries; mean over "
            "images (unit: px, or the dataset's spacing unit)",
        ),
        MetricSpec(
            name="hd95",
            higher_is_better=False,
            statistics=_stats("hd95"),
            range=inf,
            unit="px",
            citation="Maier-Hein et al., Nature Methods 21, 2024 (Metrics Reloaded)",
            description="Max of the directed 95th-percentile boundary distances; mean over images",
        ),
        MetricSpec(
            name="nsd",
            higher_is_better=True,
            statistics=_stats("nsd"),
            citation="Nikolov et al., Journal of Medical Internet Research 23(7), 2021",
            description=f"Normalized surface Dice at tolerance {NSD_TOLERANCE:g} px; mean over images",
        ),
    ]


@hookimpl
def bench_register_metrics(register):  # type: ignore[no-untyped-def]
    for spec in specs():
        register(spec)
