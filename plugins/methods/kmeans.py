"""Per-image K-means on pixel features (colour, position, Gabor), nuclei = stain-like clusters.

K-means is fitted on a seeded random sample of ``n_samples`` pixels (all pixels when the image
is smaller), then every pixel is assigned to its nearest centre.  See
:mod:`plugins.methods.clustering` for the outputs and the choice of nucleus clusters.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness import hookimpl
from plugins.methods.clustering import PixelClustering, nearest_centre


class KMeans(PixelClustering):
    """K-means clustering of each image's pixels (unsupervised)."""

    name = "kmeans"
    version = "1"
    description = "Per-image K-means on colour/position/Gabor features; stain-like clusters"

    def __init__(
        self,
        n_clusters: int = 3,
        features: str = "colour,position,gabor",
        position_weight: float = 1.0,
        gabor_weight: float = 1.0,
        n_orientations: int = 4,
        n_samples: int = 20000,
        n_init: int = 3,
        polarity: str = "auto",
        postprocess: str = "cc",
        min_size: int = 10,
    ) -> None:
        if n_clusters < 2:
            raise ValueError(f"kmeans: n_clusters must be >= 2, got {n_clusters}")
        if n_samples < n_clusters:
            raise ValueError(f"kmeans: n_samples ({n_samples}) must be >= n_clusters")
        self.n_clusters = n_clusters
        self.features = features
        self.position_weight = position_weight
        self.gabor_weight = gabor_weight
        self.n_orientations = n_orientations
        self.n_samples = n_samples
        self.n_init = n_init
        self.polarity = polarity
        self.postprocess = postprocess
        self.min_size = min_size
        self._check_common()

    def cluster(self, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        from sklearn.cluster import KMeans  # imported here, so building the registry skips sklearn

        n = len(x)
        sample = x if n <= self.n_samples else x[rng.choice(n, self.n_samples, replace=False)]
        k = min(self.n_clusters, len(np.unique(sample, axis=0)))
        model = KMeans(n_clusters=k, n_init=self.n_init, random_state=int(rng.integers(2**31 - 1))).fit(sample)
        centres = model.cluster_centers_.astype(np.float32)
        return nearest_centre(x, centres), {"inertia_sample": float(model.inertia_)}


@hookimpl
def bench_register_methods(register):  # type: ignore[no-untyped-def]
    register(KMeans)
