"""Array-packed forests agree exactly with scikit-learn's own predictions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from plugins.methods.forest_arrays import (
    check_packed,
    float32_below,
    forest_probabilities,
    forest_votes,
    matrix_lookup,
    pack_forests,
)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 6))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int) + 2 * (x[:, 2] > 1.0)  # labels 0..3
    return x, y


def test_probabilities_equal_sklearn_predict_proba(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    forests = [
        RandomForestClassifier(n_estimators=5, max_depth=6, random_state=s).fit(x[s::2], y[s::2]) for s in (0, 1)
    ]
    # the second forest never sees label 3 in a subset: pad its columns by the global labels
    forests.append(RandomForestClassifier(n_estimators=3, random_state=2).fit(x[y < 3], y[y < 3]))
    packed = pack_forests(forests, np.unique(y))
    probs = forest_probabilities(packed, *matrix_lookup(x))
    for j, forest in enumerate(forests):
        expected = np.zeros((len(x), 4))
        expected[:, np.searchsorted(np.unique(y), forest.classes_)] = forest.predict_proba(x)
        np.testing.assert_allclose(probs[j], expected, rtol=0, atol=1e-12)


def test_majority_vote_of_forests(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    forests = [RandomForestClassifier(n_estimators=4, max_depth=3, random_state=s).fit(x, y) for s in range(3)]
    packed = pack_forests(forests, np.unique(y))
    labels, _ = forest_votes(packed, *matrix_lookup(x))
    predictions = np.stack([f.predict(x) for f in forests])
    for i in range(len(x)):
        values, counts = np.unique(predictions[:, i], return_counts=True)
        if counts.max() >= 2:  # a strict majority of the three forests decides
            assert labels[i] == values[np.argmax(counts)]
        else:  # three different votes: one of them wins
            assert labels[i] in predictions[:, i]


def test_check_packed_names_missing_arrays() -> None:
    with pytest.raises(ValueError, match="lacks .*threshold"):
        check_packed({"left": np.zeros(1)}, "random_forest")


def test_float32_below_preserves_every_comparison() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=2000).astype(np.float32)
    # thresholds as sklearn makes them: midpoints of float32 neighbours (not float32 themselves),
    # plus exact float32 values and +inf for leaves
    midpoints = (values[:-1].astype(np.float64) + np.nextafter(values[:-1], np.float32(np.inf))) / 2
    thresholds = np.concatenate([midpoints, values.astype(np.float64), [np.inf]])
    below = float32_below(thresholds)
    assert below.dtype == np.float32
    for v in (values, np.nextafter(values, np.float32(np.inf))):
        exact = v[:, None].astype(np.float64) > thresholds[None, :400]
        assert np.array_equal(v[:, None] > below[None, :400], exact)
    assert np.array_equal(values[:-1] > below[: len(midpoints)], values[:-1].astype(np.float64) > midpoints)
