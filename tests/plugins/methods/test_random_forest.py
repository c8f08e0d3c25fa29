"""random_forest: synthetic Dice, class maps, patient groups, state round trip, determinism."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from harness import Method, RunContext, Sample
from plugins.methods.random_forest import RandomForest

Split = tuple[list[Sample], list[Sample]]


def fitted(train: list[Sample], seed: int = 0, **params: object) -> RandomForest:
    method = RandomForest(**params)  # type: ignore[arg-type]
    method.setup(RunContext(seed=seed))
    method.fit(train, [])
    return method


@pytest.mark.parametrize("style", ["bf", "fl"])
def test_recovers_synthetic_nuclei(
    style: str, request: pytest.FixtureRequest, mean_dice: Callable[[Method, list[Sample]], float]
) -> None:
    train, test = request.getfixturevalue(f"synthetic_{style}")
    # a 9×9 grey patch sees the >100-grey-level nucleus/background contrast; trained on four
    # images of the same generator, only the blurred 1-px rim is uncertain (measured ~0.99)
    assert mean_dice(fitted(train), test) >= 0.95


def test_state_round_trip_gives_identical_predictions(synthetic_bf: Split, tmp_path: Path) -> None:
    train, test = synthetic_bf
    method = fitted(train, colour=True, gabor=True, majority_size=3)
    save_file(method.state_dict(), tmp_path / "state.safetensors")
    clone = type(method)(**method.get_params())
    clone.load_state_dict(load_file(tmp_path / "state.safetensors"))
    for sample in test:
        a, b = method.predict(sample.image), clone.predict(sample.image)
        assert np.array_equal(a.classes, b.classes)
        assert np.array_equal(a.instances, b.instances)
        assert np.array_equal(a.probabilities, b.probabilities)


def test_deterministic_under_a_seed(synthetic_bf: Split) -> None:
    train, _ = synthetic_bf
    a, b = fitted(train, seed=5, n_trees=4), fitted(train, seed=5, n_trees=4)
    for key, value in a.state_dict().items():
        assert np.array_equal(value, b.state_dict()[key]), key


def test_learns_nucleus_classes_and_groups_by_patient(two_class: object) -> None:
    train = list(two_class.samples("train"))  # type: ignore[attr-defined]
    test = list(two_class.samples("test"))  # type: ignore[attr-defined]
    method = fitted(train, n_forests=3, n_trees=6)
    state = method.state_dict()
    assert state["classes"].tolist() == [0, 1, 2]
    # two patients (p0, p1) in the training split: only two groups, hence two forests
    assert int(state["tree_forest"].max()) == 1
    # tumour (speckled, large) vs normal (smooth, small) nuclei: class of each reference
    # nucleus by majority of its predicted pixels must match for most nuclei
    right = total = 0
    for sample in test:
        predicted = method.predict(sample.image).classes
        for label in np.unique(sample.instances)[1:]:
            pixels = sample.instances == label
            votes = np.bincount(predicted[pixels], minlength=3)
            right += int(np.argmax(votes) == sample.classes[pixels][0])
            total += 1
    assert right / total >= 0.9


def test_predict_before_fit_and_bad_state_are_clear_errors() -> None:
    method = RandomForest()
    with pytest.raises(RuntimeError, match="before fit"):
        method.predict(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="lacks"):
        method.load_state_dict({"left": np.zeros(2)})
    with pytest.raises(ValueError, match="odd"):
        RandomForest(patch=4)


def test_params_round_trip() -> None:
    method = RandomForest(patch=5, colour=True, n_forests=2, postprocess="watershed")
    assert type(method)(**method.get_params()).get_params() == method.get_params()


def test_auto_polarity_carries_a_brightfield_model_to_fluorescence(
    synthetic_bf: Split, synthetic_fl: Split, mean_dice: Callable[[Method, list[Sample]], float]
) -> None:
    train, _ = synthetic_bf
    _, fluorescence = synthetic_fl
    # raw grey: trained on dark nuclei, the bright fluorescence nuclei look like background
    assert mean_dice(fitted(train, n_trees=5), fluorescence) < 0.5
    # oriented grey (nuclei bright on every image): the same contrast, so the model transfers
    assert mean_dice(fitted(train, n_trees=5, polarity="auto"), fluorescence) >= 0.95
