"""Shared machinery of the per-image clustering methods (K-means, mean shift).

Each image is clustered on its own per-pixel features (see :mod:`plugins.methods.features`):
the clusterer is fitted on a seeded random sample of pixels and every pixel is then assigned to
the nearest centre.  The cluster map is output as ``clusters`` (scored by cluster_dice); the
foreground is the union of the clusters whose mean colour is nucleus-like (hematoxylin-dark on
brightfield, bright on fluorescence): those scoring above the midpoint between the least and
the most nucleus-like cluster.  The shared post-processing then gives instances.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import numpy as np
import skimage  # its submodules load on first use (lazily), so importing this module stays cheap

from harness import Method, Prediction
from plugins.methods.features import (
    check_polarity,
    nuclei_are_dark,
    parse_groups,
    pixel_features,
    stain_scores,
)
from plugins.methods.postprocess import PostProcess, postprocess


def nearest_centre(x: np.ndarray, centres: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Index of the nearest centre (squared Euclidean) for each row of ``x``."""
    out = np.empty(len(x), dtype=np.int32)
    c2 = (centres * centres).sum(axis=1)
    for start in range(0, len(x), chunk):
        block = x[start : start + chunk]
        d = c2[None, :] - 2.0 * block @ centres.T
        out[start : start + chunk] = np.argmin(d, axis=1)
    return out


def nucleus_clusters(
    image: np.ndarray, clusters: np.ndarray, n_clusters: int, dark_nuclei: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(selected cluster ids, stain score per cluster) by the midpoint rule."""
    flat = image[..., :3].reshape(-1, 3).astype(np.float64)
    counts = np.bincount(clusters.ravel(), minlength=n_clusters).astype(np.float64)
    means = (
        np.stack(
            [np.bincount(clusters.ravel(), weights=flat[:, c], minlength=n_clusters) for c in range(3)],
            axis=1,
        )
        / np.maximum(counts, 1.0)[:, None]
    )
    present = counts > 0
    scores = np.where(present, stain_scores(means, dark_nuclei), -np.inf)
    live = scores[present]
    if live.size < 2 or float(live.max()) == float(live.min()):
        return np.zeros(0, dtype=np.int64), scores  # no contrast: nothing is nucleus-like
    midpoint = (float(live.max()) + float(live.min())) / 2.0
    return np.flatnonzero(scores > midpoint), scores


class PixelClustering(Method):
    """Base of per-image pixel clustering methods; subclasses implement :meth:`cluster`."""

    outputs: ClassVar[frozenset[str]] = frozenset({"foreground", "instances", "clusters"})
    learns: ClassVar[bool] = False

    features: str
    position_weight: float
    gabor_weight: float
    n_orientations: int
    polarity: str
    postprocess: str
    min_size: int

    def _check_common(self) -> None:
        parse_groups(self.features)
        PostProcess.for_mask(self.postprocess, min_size=self.min_size)
        check_polarity(self.polarity, self.name)

    @abc.abstractmethod
    def cluster(self, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        """Cluster the (H·W)×F features: (labels 0..K-1 per row, extras to record)."""

    def predict(self, image: np.ndarray) -> Prediction:
        from threadpoolctl import threadpool_limits

        rng = np.random.default_rng(self.context.seed)
        groups = parse_groups(self.features)
        weights = {"position": self.position_weight, "gabor": self.gabor_weight}
        x = pixel_features(image, groups, self.n_orientations, weights)
        with threadpool_limits(1):  # small fits: threads only contend (10-50x slower under load)
            labels, extras = self.cluster(x, rng)
        clusters = labels.reshape(image.shape[:2]).astype(np.int32)
        n_clusters = int(clusters.max()) + 1
        gray = skimage.color.rgb2gray(image[..., :3])
        dark = nuclei_are_dark(gray, self.polarity)
        chosen, scores = nucleus_clusters(image, clusters, n_clusters, dark)
        mask = np.isin(clusters, chosen)
        params = PostProcess.for_mask(self.postprocess, min_size=self.min_size)
        nucleus_score = 1.0 - gray if dark else gray
        foreground, instances = postprocess(nucleus_score, params, foreground=mask)
        extras.update(
            {
                "postprocess": params.as_dict(),
                "n_clusters": n_clusters,
                "nucleus_clusters": [int(c) for c in chosen],
                "cluster_stain_scores": [float(s) if np.isfinite(s) else None for s in scores],
                "nuclei_dark": dark,
            }
        )
        return Prediction(foreground=foreground, instances=instances, clusters=clusters, extras=extras)
