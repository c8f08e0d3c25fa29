"""Two stages per cell: predictions are saved once, and a new metric set rescores them without
fitting or predicting again; damaged predictions are detected and recomputed."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from harness import Method, Prediction, hookimpl
from harness.bench import run_benchmark
from harness.plugins import Registry, Source, build_registry
from harness.predictions import PredictionReader, PredictionWriter, decode, encode
from harness.store import DamagedCellWarning, Store
from harness.types import ImagePair, MetricSpec

SOURCE = Source(entry_point="tests.two_stage", distribution="tests", version="0")


class Counting(Method):
    """Learns a threshold (the training images' mean grey level) and counts its calls."""

    name = "counting"
    learns = True
    calls: ClassVar[dict[str, int]] = {"fit": 0, "predict": 0}

    def __init__(self, shift: int = 0) -> None:
        self.shift = shift

    def fit(self, train, validation):  # type: ignore[no-untyped-def]
        Counting.calls["fit"] += 1
        self.level_ = float(np.mean([s.image.mean() for s in train])) + self.shift

    def predict(self, image: np.ndarray) -> Prediction:
        Counting.calls["predict"] += 1
        fg = image[..., 0] > self.level_
        return Prediction(foreground=fg, instances=fg.astype(np.int32))

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"level": np.array([self.level_])}


def _fg_fraction(pair: ImagePair) -> dict[str, float]:
    """Fraction of predicted foreground pixels (a metric the built-in catalogue lacks)."""
    return {"value": float(pair.prediction.foreground.mean())}


FG_FRACTION = MetricSpec(name="fg_fraction", higher_is_better=True, statistics=_fg_fraction, version="1")


def _registry(with_metric: bool) -> Registry:
    class Plugin:
        @hookimpl
        def bench_register_methods(self, register):  # type: ignore[no-untyped-def]
            register(Counting)

        if with_metric:
            @hookimpl
            def bench_register_metrics(self, register):  # type: ignore[no-untyped-def]
                register(FG_FRACTION)

    return build_registry(extra_plugins=[(Plugin(), SOURCE)], warn=False)


@pytest.fixture(autouse=True)
def _reset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_PLUGINS", raising=False)
    Counting.calls.update(fit=0, predict=0)


def _run(registry: Registry, store: Store, metrics: list[str] | None, **kw):  # type: ignore[no-untyped-def]
    return run_benchmark(registry, [("synthetic", {"n_test": 4})], [("counting", {})], [0], metrics=metrics,
                         store=store, device="cpu", **kw)


def test_a_new_metric_rescores_saved_predictions_without_fitting_or_predicting(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs")
    first = _run(_registry(False), store, ["dice"])
    assert Counting.calls == {"fit": 1, "predict": 4}
    (key_before,) = first.records

    Counting.calls.update(fit=0, predict=0)
    second = _run(_registry(True), store, ["dice", "fg_fraction"])
    assert Counting.calls == {"fit": 0, "predict": 0}  # the metric plugin only rescored
    assert second.rescored == 1 and second.reused == 0
    (key_after,) = second.records
    assert key_after != key_before  # another metric set, another score stage
    before, after = store.cell(key_before), store.cell(key_after)
    assert before and after and after["rescored"] is True
    assert after["predict_key"] == before["predict_key"]
    assert after["splits"]["test"]["dice"]["value"] == before["splits"]["test"]["dice"]["value"]

    # the new metric's value is what a fresh run (fit + predict) in another store gives
    Counting.calls.update(fit=0, predict=0)
    fresh_store = Store(tmp_path / "fresh")
    fresh = _run(_registry(True), fresh_store, ["dice", "fg_fraction"])
    assert Counting.calls == {"fit": 1, "predict": 4}
    fresh_record = fresh_store.cell(next(iter(fresh.records)))
    assert fresh_record is not None
    assert after["splits"]["test"]["fg_fraction"]["value"] == fresh_record["splits"]["test"]["fg_fraction"]["value"]
    assert after["fit_s"] == before["fit_s"]  # timings come from the predict stage


def test_force_refits_and_repredicts(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs")
    _run(_registry(False), store, ["dice"])
    Counting.calls.update(fit=0, predict=0)
    _run(_registry(True), store, ["dice", "fg_fraction"], force=True)
    assert Counting.calls == {"fit": 1, "predict": 4}


@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "delete", "bad_json", "wrong_type"])
def test_damaged_predictions_are_named_and_recomputed(tmp_path: Path, damage: str) -> None:
    store = Store(tmp_path / "runs")
    first = _run(_registry(False), store, ["dice"])
    record = store.cell(next(iter(first.records)))
    assert record is not None
    folder = store.stage_dir(record["predict_key"])
    npz, stage_json = folder / "predictions.npz", folder / "stage.json"
    if damage == "truncate":
        npz.write_bytes(npz.read_bytes()[:-20])
    elif damage == "flip_byte":
        data = bytearray(npz.read_bytes())
        data[len(data) // 2] ^= 0xFF
        npz.write_bytes(bytes(data))
    elif damage == "delete":
        npz.unlink()
    elif damage == "bad_json":
        stage_json.write_text(stage_json.read_text()[:-30])
    else:
        stage_json.write_text(json.dumps({"files": [], "images": {}}))
    Counting.calls.update(fit=0, predict=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _run(_registry(True), store, ["dice", "fg_fraction"])
    messages = [str(w.message) for w in caught if issubclass(w.category, DamagedCellWarning)]
    assert messages and str(folder) in messages[0]
    assert Counting.calls == {"fit": 1, "predict": 4}  # recomputed, not rescored
    assert store.stage(record["predict_key"]) is not None  # and stored intact again


def test_saved_predictions_round_trip_losslessly(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    instances = rng.integers(0, 70_000, size=(33, 17)).astype(np.int32)  # needs 32 bits
    small = rng.integers(0, 200, size=(33, 17)).astype(np.int32)  # fits 8 bits
    foreground = rng.random((33, 17)) > 0.5  # not instances > 0: stored itself
    preds = [
        Prediction(foreground=instances > 0, instances=instances),
        Prediction(foreground=foreground, instances=small, classes=small % 3),
        Prediction(foreground=foreground, detections={"points": np.array([[1, 2], [3, 4]]),
                                                      "labels": np.array([0, 1])}),
    ]
    assert encode(preds[0])["instances"].dtype == np.uint32
    assert encode(preds[1])["instances"].dtype == np.uint8
    assert "foreground" not in encode(preds[0])  # rebuilt from the instances
    with PredictionWriter(tmp_path / "p.npz") as writer:
        for p in preds:
            writer.add(p)
        info = writer.close()
    assert info["images"] == 3 and info["bytes"] == (tmp_path / "p.npz").stat().st_size
    with PredictionReader(tmp_path / "p.npz") as reader:
        back = [reader.get(i) for i in range(3)]
    for original, loaded in zip(preds, back, strict=True):
        for name in ("foreground", "instances", "classes"):
            a, b = getattr(original, name), getattr(loaded, name)
            assert (a is None) == (b is None)
            if a is not None:
                assert np.array_equal(a, b) and b.dtype == (bool if name == "foreground" else np.int32)
    assert np.array_equal(back[2].detections["points"], preds[2].detections["points"])
    assert decode(encode(preds[0])).instances.dtype == np.int32


def test_probabilities_are_kept_only_on_request() -> None:
    pred = Prediction(foreground=np.ones((2, 2), bool), probabilities=np.full((2, 2), 0.25, np.float32))
    assert "probabilities" not in encode(pred)
    assert np.array_equal(encode(pred, probabilities=True)["probabilities"], pred.probabilities)


def test_the_same_predictions_give_the_same_file(tmp_path: Path) -> None:
    pred = Prediction(foreground=np.eye(8, dtype=bool), instances=np.eye(8, dtype=np.int32))
    digests = []
    for name in ("a.npz", "b.npz"):
        if digests:
            time.sleep(2.1)  # zip timestamps have a 2 s resolution: a later write must not differ
        with PredictionWriter(tmp_path / name) as writer:
            writer.add(pred)
            digests.append(writer.close()["sha256"])
    assert digests[0] == digests[1]
