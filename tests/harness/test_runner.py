"""The runner: records, hand-checked values, failures as records, skips, timeouts, resume."""

from __future__ import annotations

import json

import pytest

from harness.bench import run_benchmark
from harness.plugins import Registry
from harness.store import Store

SQUARES = [("squares", {})]


def images_by_id(store: Store, key: str) -> dict[str, dict]:
    return {row["sample_id"]: row for row in store.images(key)}


def test_perfect_and_shifted_predictions_score_hand_computed_values(registry: Registry, store: Store) -> None:
    result = run_benchmark(registry, SQUARES, [("decode", {}), ("decode", {"shift": 1})], [0],
                           metrics=["dice", "iou", "pixel_accuracy"], store=store)
    assert result.counts() == {"done": 2}
    perfect, shifted = result.cells
    rows = images_by_id(store, perfect.key)
    assert rows["a"]["values"] == {"dice": 1.0, "iou": 1.0, "pixel_accuracy": 1.0}
    # shift by one column: image a overlaps 4×3 = 12 of 16 + 16 pixels; image b 2 × (2×1) of 8 + 8
    rows = images_by_id(store, shifted.key)
    assert rows["a"]["values"]["dice"] == pytest.approx(24 / 32)
    assert rows["a"]["values"]["iou"] == pytest.approx(12 / 20)
    assert rows["b"]["values"]["dice"] == pytest.approx(8 / 16)
    assert rows["b"]["values"]["iou"] == pytest.approx(4 / 12)
    assert rows["a"]["values"]["pixel_accuracy"] == pytest.approx(92 / 100)
    record = store.cell(shifted.key)
    assert record["status"] == "done"
    assert record["splits"]["test"]["dice"]["value"] == pytest.approx((0.75 + 0.5) / 2)
    assert record["label"] == "decode(shift=1)"
    assert record["n_images"] == 2 and record["latency_p50_ms"] >= 0 and record["peak_rss_mb"] > 0


def test_cells_are_the_cross_product_with_distinct_keys(registry: Registry, store: Store) -> None:
    result = run_benchmark(registry, [("squares", {}), ("synthetic", {"n_test": 1, "n_train": 1})],
                           [("decode", {}), ("otsu", {})], [0, 1], metrics=["dice"], store=store)
    assert len(result.cells) == 2 * 2 * 2
    assert len({c.key for c in result.cells}) == 8


def test_failing_cell_is_recorded_and_the_run_goes_on(registry: Registry, store: Store) -> None:
    result = run_benchmark(registry, SQUARES, [("crash", {}), ("decode", {})], [0], metrics=["dice"], store=store)
    crash, decode = result.cells
    assert store.cell(crash.key)["status"] == "error"
    assert "model exploded" in store.cell(crash.key)["error"]
    assert store.cell(decode.key)["status"] == "done"
    assert json.loads(store.run_path(result.run_id).read_text())["counts"] == {"done": 1, "error": 1}


def test_unreadable_sample_fails_that_image_only(registry: Registry, store: Store) -> None:
    result = run_benchmark(registry, [("squares", {"broken": "b"})], [("decode", {})], [0], metrics=["dice"], store=store)
    key = result.cells[0].key
    record = store.cell(key)
    assert record["status"] == "done" and record["n_failed_images"] == 1
    assert "b.png is truncated" in images_by_id(store, key)["b"]["error"]
    assert record["splits"]["test"]["dice"] == {"n_images": 2, "n_failed": 1, "value": 1.0}


def test_inapplicable_method_is_a_recorded_skip(registry: Registry, store: Store) -> None:
    result = run_benchmark(registry, SQUARES, [("needs-classes", {})], [0], store=store)
    record = store.cell(result.cells[0].key)
    assert record["status"] == "skipped"
    assert "needs reference classes" in record["error"]


def test_local_cell_timeout_becomes_an_error_record(registry: Registry, store: Store) -> None:
    result = run_benchmark(registry, SQUARES, [("sleepy", {"seconds": 5.0}), ("decode", {})], [0],
                           metrics=["dice"], store=store, cell_timeout=0.5)
    sleepy, decode = result.cells
    assert store.cell(sleepy.key)["error"].startswith("timeout")
    assert store.cell(decode.key)["status"] == "done"


def test_finished_cells_are_reused_and_force_recomputes(registry: Registry, store: Store) -> None:
    first = run_benchmark(registry, SQUARES, [("decode", {})], [0, 1], metrics=["dice"], store=store)
    stamps = {k: (store.cell_dir(k) / "cell.json").stat().st_mtime_ns for k in first.records}
    second = run_benchmark(registry, SQUARES, [("decode", {})], [0, 1], metrics=["dice"], store=store)
    assert second.reused == 2
    assert {k: (store.cell_dir(k) / "cell.json").stat().st_mtime_ns for k in first.records} == stamps
    third = run_benchmark(registry, SQUARES, [("decode", {})], [0, 1], metrics=["dice"], store=store, force=True)
    assert third.reused == 0


def test_error_cells_are_retried_on_the_next_run(registry: Registry, store: Store) -> None:
    first = run_benchmark(registry, SQUARES, [("crash", {})], [0], metrics=["dice"], store=store)
    second = run_benchmark(registry, SQUARES, [("crash", {})], [0], metrics=["dice"], store=store)
    assert first.reused == 0 and second.reused == 0


def test_key_changes_with_parameters_seed_and_metrics(registry: Registry, store: Store) -> None:
    from harness.runner import plan

    base = plan(registry, SQUARES, [("decode", {})], [0], metrics=["dice"])[0].key
    assert plan(registry, SQUARES, [("decode", {})], [0], metrics=["dice"])[0].key == base
    assert plan(registry, SQUARES, [("decode", {"shift": 1})], [0], metrics=["dice"])[0].key != base
    assert plan(registry, SQUARES, [("decode", {})], [1], metrics=["dice"])[0].key != base
    assert plan(registry, SQUARES, [("decode", {})], [0], metrics=["dice", "iou"])[0].key != base
    # an explicit default is the same cell as the default
    assert plan(registry, SQUARES, [("decode", {"shift": 0})], [0], metrics=["dice"])[0].key == base


def test_unknown_metric_is_rejected_with_a_suggestion(registry: Registry, store: Store) -> None:
    from harness.types import PluginError

    with pytest.raises(PluginError, match="did you mean 'dice'"):
        run_benchmark(registry, SQUARES, [("decode", {})], [0], metrics=["dicee"], store=store)


def test_learning_method_is_fitted_timed_and_its_state_saved_without_pickle(registry: Registry, store: Store) -> None:
    from safetensors.numpy import load_file

    result = run_benchmark(registry, SQUARES, [("learned-threshold", {})], [0], metrics=["dice"], store=store)
    key = result.cells[0].key
    record = store.cell(key)
    assert record["status"] == "done" and record["fit_s"] >= 0
    # the training image's square has value 3, so level = 3 and both test images (ids 5 and 44) are found
    assert record["splits"]["test"]["dice"]["value"] == 1.0
    state = load_file(str(store.cell_file(key, "model.safetensors")))
    assert state["level"].tolist() == [3.0]


class _Batched:
    """Predicts all-background masks, two same-sized images per ``predict_batch`` call."""

    @staticmethod
    def plugin():  # type: ignore[no-untyped-def]
        import numpy as np

        from harness import Method, Prediction, hookimpl

        class Batched(Method):
            name = "batched"
            outputs = frozenset({"foreground"})
            predict_batch_size = 2
            calls: list[int] = []

            def __init__(self) -> None:
                pass

            def predict(self, image):  # type: ignore[no-untyped-def]
                return Prediction(foreground=np.zeros(image.shape[:2], dtype=bool))

            def predict_batch(self, images):  # type: ignore[no-untyped-def]
                Batched.calls.append(len(images))
                return [self.predict(image) for image in images]

        class Plugin:
            @hookimpl
            def bench_register_methods(self, register):  # type: ignore[no-untyped-def]
                register(Batched)

        return Plugin(), Batched


def test_the_whole_first_batch_is_the_warm_up(store: Store) -> None:
    """Five same-sized images in batches of two: calls of 2, 2 and 1 images; the first call's
    two images are left out of the latency statistics (not only its first image)."""
    from harness.plugins import build_registry
    from tests.conftest import FAKE

    plugin, batched = _Batched.plugin()
    registry = build_registry(extra_plugins=[(plugin, FAKE)], warn=False)
    result = run_benchmark(registry, [("synthetic", {"n_test": 5, "n_train": 1})], [("batched", {})], [0],
                           metrics=["dice"], store=store)
    (key,) = result.records
    record = store.cell(key)
    assert record["status"] == "done" and record["predict_batch_size"] == 2
    assert batched.calls == [2, 2]  # the fifth image alone goes through predict
    assert record["n_images"] == 5 and record["n_timed"] == 3
