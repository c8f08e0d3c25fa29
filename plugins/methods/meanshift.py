"""Per-image mean shift on pixel features, bandwidth estimated per image.

Mean shift is fitted on a seeded random sample of ``n_samples`` pixels (200 in the original
study); the bandwidth comes from :func:`sklearn.cluster.estimate_bandwidth` on that sample at
``quantile``; every pixel is then assigned to the nearest mode.  See
:mod:`plugins.methods.clustering` for the outputs and the choice of nucleus clusters.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.cluster import MeanShift as _SkMeanShift
from sklearn.cluster import estimate_bandwidth

from harness import hookimpl
from plugins.methods.clustering import PixelClustering, nearest_centre


class MeanShift(PixelClustering):
    """Mean-shift clustering of each image's pixels (unsupervised; K found per image)."""

    name = "meanshift"
    version = "1"
    description = "Per-image mean shift on colour/position/Gabor features; stain-like modes"

    def __init__(
        self,
        n_samples: int = 200,
        quantile: float = 0.3,
        features: str = "colour,position,gabor",
        position_weight: float = 1.0,
        gabor_weight: float = 1.0,
        n_orientations: int = 4,
        polarity: str = "auto",
        postprocess: str = "cc",
        min_size: int = 10,
    ) -> None:
        if n_samples < 2:
            raise ValueError(f"meanshift: n_samples must be >= 2, got {n_samples}")
        if not 0.0 < quantile <= 1.0:
            raise ValueError(f"meanshift: quantile must be in (0, 1], got {quantile}")
        self.n_samples = n_samples
        self.quantile = quantile
        self.features = features
        self.position_weight = position_weight
        self.gabor_weight = gabor_weight
        self.n_orientations = n_orientations
        self.polarity = polarity
        self.postprocess = postprocess
        self.min_size = min_size
        self._check_common()

    def cluster(self, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        n = len(x)
        sample = x if n <= self.n_samples else x[rng.choice(n, self.n_samples, replace=False)]
        bandwidth = float(estimate_bandwidth(sample, quantile=self.quantile))
        if bandwidth <= 0:  # all sampled pixels identical: one mode
            return np.zeros(n, dtype=np.int32), {"bandwidth": 0.0}
        model = _SkMeanShift(bandwidth=bandwidth).fit(sample)
        centres = model.cluster_centers_.astype(np.float32)
        return nearest_centre(x, centres), {"bandwidth": bandwidth}


@hookimpl
def bench_register_methods(register):  # type: ignore[no-untyped-def]
    register(MeanShift)
