"""kmeans and meanshift on the synthetic dataset: Dice, clusters, determinism, parameters."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from sklearn.cluster import MeanShift as SkMeanShift
from sklearn.cluster import estimate_bandwidth
from threadpoolctl import threadpool_limits

from harness import Method, RunContext, Sample
from plugins.datasets.synthetic import Synthetic
from plugins.methods.clustering import nearest_centre
from plugins.methods.features import pixel_features
from plugins.methods.kmeans import KMeans
from plugins.methods.meanshift import MeanShift, mean_shift_modes

Split = tuple[list[Sample], list[Sample]]

# Synthetic nuclei differ from their background by >100 grey levels in every channel (texture
# ±12, noise sd 6), so the colour features separate them almost perfectly and the only
# ambiguity is the 1-px blurred rim: Dice ~0.97 (K-means) and ~0.92 (mean shift on only 200
# sampled pixels, whose modes are coarser) were measured; the bounds leave a margin.
REQUIRED = {"kmeans": 0.9, "meanshift": 0.85}


def make(name: str, **params: object) -> Method:
    cls = {"kmeans": KMeans, "meanshift": MeanShift}[name]
    method = cls(**params)  # type: ignore[arg-type]
    method.setup(RunContext(seed=3))
    return method


@pytest.mark.parametrize("name", ["kmeans", "meanshift"])
@pytest.mark.parametrize("style", ["bf", "fl"])
def test_recovers_synthetic_nuclei(
    name: str,
    style: str,
    request: pytest.FixtureRequest,
    mean_dice: Callable[[Method, list[Sample]], float],
) -> None:
    _, test = request.getfixturevalue(f"synthetic_{style}")
    assert mean_dice(make(name), test) >= REQUIRED[name]


@pytest.mark.parametrize("name", ["kmeans", "meanshift"])
def test_outputs_clusters_and_records_postprocess(name: str, synthetic_bf: Split) -> None:
    image = synthetic_bf[1][0].image
    prediction = make(name, postprocess="watershed").predict(image)
    assert prediction.clusters.shape == image.shape[:2]
    n = prediction.extras["n_clusters"]
    assert set(np.unique(prediction.clusters)) <= set(range(n))
    chosen = prediction.extras["nucleus_clusters"]
    assert 1 <= len(chosen) < n
    # the foreground is the chosen clusters after post-processing (holes filled, specks dropped)
    raw = np.isin(prediction.clusters, chosen)
    assert np.count_nonzero(raw ^ prediction.foreground) < 0.02 * raw.size
    assert prediction.extras["postprocess"]["split"] == "watershed"
    assert np.array_equal(prediction.instances > 0, prediction.foreground)


def test_kmeans_uses_k_clusters(synthetic_bf: Split) -> None:
    for k in (3, 4, 5):
        clusters = make("kmeans", n_clusters=k).predict(synthetic_bf[1][0].image).clusters
        assert len(np.unique(clusters)) == k


@pytest.mark.parametrize("name", ["kmeans", "meanshift"])
def test_deterministic_under_a_seed_and_params_round_trip(name: str, synthetic_bf: Split) -> None:
    image = synthetic_bf[1][1].image
    a, b = make(name).predict(image), make(name).predict(image)
    assert np.array_equal(a.clusters, b.clusters)
    assert np.array_equal(a.instances, b.instances)
    method = make(name, n_samples=300, features="colour,gabor")
    assert type(method)(**method.get_params()).get_params() == method.get_params()


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="n_clusters"):
        KMeans(n_clusters=1)
    with pytest.raises(ValueError, match="feature group"):
        MeanShift(features="colour,depth")
    with pytest.raises(ValueError, match="own mask"):
        KMeans(postprocess="otsu")
    with pytest.raises(ValueError, match="kmeans: unknown polarity"):
        KMeans(polarity="up")


@pytest.mark.parametrize("name", ["kmeans", "meanshift"])
def test_flat_image_has_no_nuclei(name: str) -> None:
    prediction = make(name).predict(np.full((16, 16, 3), 200, np.uint8))
    assert not prediction.foreground.any()
    # position still splits the pixels into clusters, but all have the same colour
    assert prediction.extras["nucleus_clusters"] == []


def test_nearest_centre_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    x, centres = rng.normal(size=(500, 4)), rng.normal(size=(5, 4))
    brute = np.argmin(((x[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
    assert np.array_equal(nearest_centre(x, centres, chunk=64), brute)


@pytest.mark.parametrize("index", [0, 1])  # one brightfield (RGB), one fluorescence (grey)
def test_mean_shift_modes_equal_sklearn(index: int) -> None:
    image = Synthetic(style="mixed").load("train", f"train_{index:04d}").image
    x = pixel_features(image, ("colour", "position", "gabor")).astype(np.float64)
    x = x[np.random.default_rng(index).choice(len(x), 200, replace=False)]
    bandwidth = estimate_bandwidth(x, quantile=0.3)
    with threadpool_limits(1):
        expected = SkMeanShift(bandwidth=bandwidth).fit(x).cluster_centers_
    np.testing.assert_allclose(mean_shift_modes(x, bandwidth), expected, rtol=0, atol=1e-9)
