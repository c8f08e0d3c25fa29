"""Seconds per 512×512 image of the classical methods (run with ``--benchmark-enable``).

Predict time for every classical method, and fit time of random_forest on four 512×512
training images.  Images come from the synthetic generator at 512×512 with ~150 nuclei.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from harness import Method, RunContext, Sample
from plugins.datasets.synthetic import Synthetic
from plugins.methods.kmeans import KMeans
from plugins.methods.meanshift import MeanShift
from plugins.methods.otsu import Otsu
from plugins.methods.random_forest import RandomForest
from plugins.methods.sift_svm import SiftSvm

SIZE = 512


@pytest.fixture(scope="module")
def large() -> tuple[list[Sample], np.ndarray]:
    """Four 512×512 training samples (with a two-class map: nucleus id parity) and a test image."""
    ds = Synthetic(n_train=4, n_test=1, height=SIZE, width=SIZE, n_objects=150, style="mixed")
    train = []
    for s in ds.samples("train"):
        classes = np.where(s.instances > 0, 1 + s.instances % 2, 0).astype(np.int32)
        train.append(Sample(id=s.id, image=s.image, instances=s.instances, classes=classes, meta={}))
    return train, ds.load("test", "test_0000").image


def ready(method: Method, train: list[Sample]) -> Method:
    method.setup(RunContext(seed=0))
    if method.learns:
        method.fit(train, [])
    return method


PREDICTORS: dict[str, Callable[[], Method]] = {
    "otsu": Otsu,
    "kmeans": KMeans,
    "meanshift": MeanShift,
    "random_forest": RandomForest,
    "sift_svm": SiftSvm,
}


@pytest.mark.parametrize("name", list(PREDICTORS))
def test_predict_seconds_per_512_image(
    benchmark: pytest.FixtureRequest, large: tuple[list[Sample], np.ndarray], name: str
) -> None:
    train, image = large
    method = ready(PREDICTORS[name](), train)
    prediction = benchmark.pedantic(method.predict, args=(image,), rounds=3, warmup_rounds=1)
    assert prediction.provides() & method.outputs


def test_random_forest_fit_seconds_on_four_512_images(
    benchmark: pytest.FixtureRequest, large: tuple[list[Sample], np.ndarray]
) -> None:
    train, _ = large

    def fit() -> RandomForest:
        method = RandomForest()
        method.setup(RunContext(seed=0))
        method.fit(train, [])
        return method

    method = benchmark.pedantic(fit, rounds=3)
    assert method.state_dict()["left"].size > 0
