"""The conformance kit catches broken plugins (it is only useful if it can fail)."""

from __future__ import annotations

import numpy as np
import pytest

from harness import Method, MetricSpec, Prediction
from harness.testing import check_dataset, check_method, check_metric
from tests.conftest import Decode, Squares


class Noisy(Method):
    name = "noisy"

    def __init__(self) -> None:
        pass

    def predict(self, image: np.ndarray) -> Prediction:
        rng = np.random.default_rng()  # unseeded: not deterministic
        return Prediction(instances=rng.integers(0, 3, image.shape[:2]).astype(np.int32))


class WrongShape(Decode):
    name = "wrong-shape"

    def predict(self, image: np.ndarray) -> Prediction:
        return Prediction(instances=np.zeros((3, 3), dtype=np.int32))


class Renamed(Decode):
    name = "renamed"

    def __init__(self, shift: int = 0) -> None:
        self.offset = shift  # stored under another name: cannot be recorded


class Doubled(Decode):
    name = "doubled"

    def __init__(self, shift: int = 1) -> None:
        self.shift = shift * 2  # recorded value differs from what was passed


def test_good_plugins_pass() -> None:
    check_method(Decode)
    check_dataset(Squares())


@pytest.mark.parametrize(("cls", "message"), [
    (Noisy, "same seed give different predictions"),
    (WrongShape, "instances has shape"),
    (Renamed, "parameter 'shift' is not stored"),
    (Doubled, "does not round-trip"),
])
def test_broken_methods_fail_with_the_rule_they_break(cls: type[Method], message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_method(cls)


def test_metric_that_is_not_perfect_on_identical_inputs_fails() -> None:
    spec = MetricSpec(name="off-by-one", higher_is_better=True, statistics=lambda pair: {"value": 0.5})
    with pytest.raises(AssertionError, match="expected the best value 1.0"):
        check_metric(spec)


def test_metric_outside_its_range_fails() -> None:
    spec = MetricSpec(name="too-big", higher_is_better=True, statistics=lambda pair: {"value": 2.0})
    with pytest.raises(AssertionError, match="outside its range"):
        check_metric(spec)
