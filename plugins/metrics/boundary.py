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

from harness import ImagePair, MetricSpec, hookimpl
from plugins.metrics.matching import distances_at
from plugins.metrics.nearest import boundary
from plugins.metrics.pixel import foreground_pair, paired_arrays

#: Default NSD tolerance in the distance unit (pixels unless the dataset gives a spacing).
NSD_TOLERANCE = 2.0


def surface_distances(
    *, prediction: np.ndarray, reference: np.ndarray, spacing: tuple[float, float] = (1.0, 1.0)
) -> tuple[np.ndarray, np.ndarray] | None:
    """(distances of ∂P pixels to ∂R, distances of ∂R pixels to ∂P), or None if a side is empty."""
    p, r = paired_arrays(prediction, reference)
    p, r = p > 0, r > 0
    bp, br = boundary(p), boundary(r)
    if not bp.any() or not br.any():
        return None
    rows = np.flatnonzero(bp.any(axis=1) | br.any(axis=1))
    cols = np.flatnonzero(bp.any(axis=0) | br.any(axis=0))
    win = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    bp, br = bp[win], br[win]
    return distances_at(br, bp, spacing, thin=True), distances_at(bp, br, spacing, thin=True)


def boundary_statistics(
    *,
    prediction: np.ndarray,
    reference: np.ndarray,
    spacing: tuple[float, float] = (1.0, 1.0),
    tolerance: float = NSD_TOLERANCE,
) -> dict[str, float]:
    """hd, hd95 and nsd of one image (plus the boundary sizes behind nsd)."""
    d = surface_distances(prediction=prediction, reference=reference, spacing=spacing)
    if d is None:
        p_any = bool(np.any(np.asarray(prediction) > 0))
        r_any = bool(np.any(np.asarray(reference) > 0))
        if not p_any and not r_any:
            return {"hd": 0.0, "hd95": 0.0, "nsd": 1.0}
        h, w = np.asarray(reference).shape
        diagonal = math.hypot(h * spacing[0], w * spacing[1])
        return {"hd": diagonal, "hd95": diagonal, "nsd": 0.0}
    d_pr, d_rp = d
    within = np.count_nonzero(d_pr <= tolerance) + np.count_nonzero(d_rp <= tolerance)
    return {
        "hd": float(max(d_pr.max(), d_rp.max())),
        "hd95": float(max(np.percentile(d_pr, 95), np.percentile(d_rp, 95))),
        "nsd": float(within) / float(d_pr.size + d_rp.size),
    }


def hd(
    *, prediction: np.ndarray, reference: np.ndarray, spacing: tuple[float, float] = (1.0, 1.0)
) -> float:
    """Hausdorff distance between the foreground boundaries (max of both directed maxima).

    Lower is better, in pixels or spacing units.  Both empty -> 0; exactly one empty -> the
    image diagonal.  Image level.  Source: Huttenlocher et al., IEEE TPAMI 15(9), 1993.
    """
    return boundary_statistics(prediction=prediction, reference=reference, spacing=spacing)["hd"]


def hd95(
    *, prediction: np.ndarray, reference: np.ndarray, spacing: tuple[float, float] = (1.0, 1.0)
) -> float:
    """95th-percentile Hausdorff: max of the two directed 95th percentiles (linear
    interpolation, as MONAI / Metrics Reloaded; not medpy's pooled percentile).

    Lower is better.  Both empty -> 0; exactly one empty -> the image diagonal.  Image level.
    """
    stats = boundary_statistics(prediction=prediction, reference=reference, spacing=spacing)
    return stats["hd95"]


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
    return boundary_statistics(
        prediction=prediction, reference=reference, spacing=spacing, tolerance=tolerance
    )["nsd"]


# ---- records -------------------------------------------------------------------------------


def _stats(key: str):  # type: ignore[no-untyped-def]
    def statistics(pair: ImagePair) -> dict[str, float]:
        def compute() -> dict[str, float]:
            pred, ref = foreground_pair(pair)
            return boundary_statistics(prediction=pred, reference=ref, spacing=pair.spacing)

        return {"value": pair.cached("boundary.stats", compute)[key]}

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
            description=f"Normalized surface Dice at tolerance {NSD_TOLERANCE:g} px; mean "
            "over images",
        ),
    ]


@hookimpl
def bench_register_metrics(register):  # type: ignore[no-untyped-def]
    for spec in specs():
        register(spec)
