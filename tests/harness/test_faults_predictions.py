"""Predictions whose arrays cannot mean what their field says are refused per image, with a
message naming the method and the field (``check_prediction``)."""

from __future__ import annotations

import numpy as np
import pytest

from harness import Method, Prediction, Sample, hookimpl
from harness.bench import run_benchmark
from harness.plugins import Source, build_registry
from harness.runner import check_prediction
from harness.store import Store

SAMPLE = Sample(id="s", image=np.zeros((4, 5, 3), dtype=np.uint8), instances=np.zeros((4, 5), dtype=np.int32))
FG = frozenset({"foreground"})
INST = frozenset({"foreground", "instances"})


def grid(value: object, dtype: object) -> np.ndarray:
    return np.full((4, 5), value, dtype=dtype)


@pytest.mark.parametrize(("pred", "outputs", "error", "message"), [
    (Prediction(foreground=grid(1.0, float)), FG, TypeError,
     "method 'm': foreground has dtype float64, expected bool (e.g. return score > threshold)"),
    (Prediction(foreground=grid(np.nan, float)), FG, TypeError, "method 'm': foreground has dtype float64, expected bool"),
    (Prediction(foreground=grid("yes", "<U3")), FG, TypeError, "method 'm': foreground has dtype <U3, expected bool"),
    (Prediction(foreground=grid(1, np.uint8)), FG, TypeError, "method 'm': foreground has dtype uint8, expected bool"),
    (Prediction(foreground=[[True] * 5] * 4), FG, TypeError, "method 'm': foreground is a list, expected a numpy array"),
    (Prediction(instances=grid(1.5, np.float32)), INST, TypeError,
     "method 'm': instances has dtype float32, expected an integer id map (e.g. int32)"),
    (Prediction(instances=grid(True, bool)), INST, TypeError, "method 'm': instances has dtype bool, expected an integer"),
    (Prediction(instances=grid(-2, np.int32)), INST, ValueError,
     "method 'm': instances holds negative id -2; ids are 0 (background) or positive"),
    (Prediction(foreground=grid(False, bool), classes=grid(-1, np.int64)), FG, ValueError,
     "method 'm': classes holds negative id -1"),
    (Prediction(foreground=grid(False, bool), clusters=grid(0.5, float)), FG, TypeError,
     "method 'm': clusters has dtype float64, expected an integer id map"),
    (Prediction(foreground=grid(False, bool), probabilities=grid(np.nan, np.float32)), FG, ValueError,
     "method 'm': probabilities holds 20 non-finite value(s) (NaN or inf)"),
    (Prediction(foreground=grid(False, bool), probabilities=np.zeros((2, 4, 4))), FG, ValueError,
     "method 'm': probabilities has shape (2, 4, 4), expected (4, 5) or (C, 4, 5) for image (4, 5)"),
    (Prediction(foreground=grid(False, bool), probabilities=grid("0.5", "<U3")), FG, TypeError,
     "method 'm': probabilities has dtype <U3, expected floats"),
])
def test_bad_fields_are_refused_naming_method_and_field(pred: Prediction, outputs: frozenset[str],
                                                         error: type[Exception], message: str) -> None:
    with pytest.raises(error) as caught:
        check_prediction(pred, SAMPLE, outputs, "m")
    assert str(caught.value).startswith(message)


def test_well_formed_predictions_pass() -> None:
    probabilities = np.full((3, 4, 5), 1 / 3, dtype=np.float32)
    pred = Prediction(foreground=grid(True, bool), instances=grid(7, np.uint16), classes=grid(0, np.int32),
                      clusters=grid(-1, np.int64), probabilities=probabilities)
    check_prediction(pred, SAMPLE, INST, "m")  # clusters may use -1 (no cluster)
    check_prediction(Prediction(instances=grid(0, np.int32)), SAMPLE, INST, "m")


class NanScores(Method):
    name = "nan-scores"
    outputs = frozenset({"foreground"})

    def __init__(self) -> None:
        pass

    def predict(self, image: np.ndarray) -> Prediction:
        h, w = image.shape[:2]
        return Prediction(foreground=np.zeros((h, w), dtype=bool), probabilities=np.full((h, w), np.nan))


class _Plugin:
    @hookimpl
    def bench_register_methods(self, register):  # type: ignore[no-untyped-def]
        register(NanScores)


def test_the_runner_fails_each_image_with_the_message(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import FAKE, FakePlugin

    monkeypatch.delenv("BENCH_PLUGINS", raising=False)
    monkeypatch.delenv("BENCH_DISABLE_PLUGINS", raising=False)
    registry = build_registry(extra_plugins=[(FakePlugin(), FAKE), (_Plugin(), Source("t.nan", "t-nan", "0"))], warn=False)
    store = Store(tmp_path / "runs")
    result = run_benchmark(registry, [("squares", {})], [("nan-scores", {})], [0], metrics=["dice"], store=store)
    [cell] = result.cells
    rows = store.images(cell.key)
    assert [r["status"] for r in rows] == ["error", "error"]
    assert rows[0]["error"] == ("predict: ValueError: method 'nan-scores': probabilities holds 100 non-finite "
                                "value(s) (NaN or inf)")
    assert store.cell(cell.key)["status"] == "error"
