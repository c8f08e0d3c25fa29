"""Array-packed forests agree exactly with scikit-learn's own predictions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from plugins.methods.forest_arrays import (
    check_packed,
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
        RandomForestClassifier(n_estimators=5, max_depth=6, random_state=s).fit(x[s::2], y[s::2])
        for s in (0, 1)
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
    forests = [
        RandomForestClassifier(n_estimators=4, max_depth=3, random_state=s).fit(x, y) for s in range(3)
    ]
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
