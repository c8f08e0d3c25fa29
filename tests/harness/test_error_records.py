"""An error record says which image failed first and keeps its traceback and the plugin's
distribution; a metric failing everywhere does not fail a cell whose other metrics scored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness import Method, Prediction, hookimpl
from harness.bench import build_leaderboard, run_benchmark
from harness.plugins import Registry, Source, build_registry
from harness.store import Store
from harness.types import ImagePair, MetricSpec

SOURCE = Source(entry_point="tests.errors", distribution="segbench-test-errors", version="0")


class Broken(Method):
    name = "broken"

    def __init__(self) -> None:
        pass

    def predict(self, image: np.ndarray) -> Prediction:
        raise ValueError("no model for this image type")  # the line the traceback must show


def _explode(pair: ImagePair) -> dict[str, float]:
    raise ZeroDivisionError("always")


def _registry() -> Registry:
    class Plugin:
        @hookimpl
        def bench_register_methods(self, register):  # type: ignore[no-untyped-def]
            register(Broken)

        @hookimpl
        def bench_register_metrics(self, register):  # type: ignore[no-untyped-def]
            register(MetricSpec(name="explode", higher_is_better=True, statistics=_explode))

    return build_registry(extra_plugins=[(Plugin(), SOURCE)], warn=False)


SYNTH = ("synthetic", {"n_train": 0, "n_validation": 0, "n_test": 3, "height": 32, "width": 32})


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_PLUGINS", raising=False)


def test_error_record_names_the_first_image_its_traceback_and_the_distribution(tmp_path: Path) -> None:
    store = Store(tmp_path)
    result = run_benchmark(_registry(), [SYNTH], [("broken", {})], [0], metrics=["dice"], store=store)
    record = store.cell(next(iter(result.records)))
    assert record is not None and record.status == "error"
    rows = store.images(record.key)  # every image's failure is kept, with its traceback
    ids = [r["sample_id"] for r in rows]
    assert [r["status"] for r in rows] == ["error"] * 3 and len(set(ids)) == 3
    assert all("no model for this image type" in r["traceback"] for r in rows)
    assert record.error == (f"RuntimeError: every image failed; first (test/{ids[0]}): "
                            "predict: ValueError: no model for this image type")
    assert record.traceback is not None and 'raise ValueError("no model for this image type")' in record.traceback
    assert record["method_distribution"] == "segbench-test-errors"


def test_a_metric_failing_everywhere_leaves_the_cell_done_and_the_entry_incomplete(tmp_path: Path) -> None:
    store = Store(tmp_path)
    registry = _registry()
    result = run_benchmark(registry, [SYNTH], [("otsu", {})], [0], metrics=["dice", "explode"], store=store)
    record = store.cell(next(iter(result.records)))
    assert record is not None and record.status == "done"
    rows = store.images(record.key)
    assert [r["status"] for r in rows] == ["partial"] * 3
    assert rows[0]["metric_errors"] == {"explode": "ZeroDivisionError: always"} and "dice" in rows[0]["values"]
    _, table, _ = build_leaderboard(registry, store, store.run(result.run_id), "synthetic", metrics=["dice", "explode"])
    assert table[0]["status"].startswith("incomplete: 3 image/metric evaluations failed")
