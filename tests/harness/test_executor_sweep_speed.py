"""Throughput of one 40-cell sweep (classical methods × synthetic sizes × seeds) per executor.

Benchmarks only (``pytest tests/harness/test_executor_sweep_speed.py --benchmark-enable``);
skipped in the test run, before any cluster is started.
Each records cells per minute and the per-cell overhead against the in-process serial run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from harness.bench import run_benchmark
from harness.plugins import build_registry
from harness.store import Store
from tests.harness.test_executor_ray_cluster import _workers_import_this_checkout, started_cluster  # noqa: F401

SIZES = [("synthetic", {"n_train": 2, "n_validation": 0, "n_test": 4, "height": s, "width": s, "n_objects": 10})
         for s in (64, 128)]
METHODS = [("otsu", {}), ("kmeans", {})]
SEEDS = list(range(10))  # 2 sizes × 2 methods × 10 seeds = 40 cells


@pytest.fixture(autouse=True)
def _only_when_benchmarking(benchmark: Any) -> None:
    if benchmark.disabled:
        pytest.skip("a benchmark: run with --benchmark-enable")


def sweep(store: Store, **kwargs: Any) -> float:
    registry = build_registry(warn=False)
    start = time.perf_counter()
    result = run_benchmark(registry, SIZES, METHODS, SEEDS, metrics=["dice"], store=store, **kwargs)
    seconds = time.perf_counter() - start
    assert result.counts() == {"done": 40}
    return seconds


def measure(benchmark: Any, tmp_path: Path, **kwargs: Any) -> None:
    runs = iter(range(100))
    seconds = benchmark.pedantic(lambda: sweep(Store(tmp_path / f"s{next(runs)}"), **kwargs), rounds=1, iterations=1)
    compute = sum((Store(tmp_path / "s0").cell(k) or {}).get("predict_s", 0) + (Store(tmp_path / "s0").cell(k) or {})
                  .get("fit_s", 0) for k in Store(tmp_path / "s0").all_cell_keys())
    benchmark.extra_info.update(cells_per_min=round(40 * 60 / seconds, 1), wall_s=round(seconds, 2),
                                cell_compute_s=round(compute, 2), overhead_per_cell_s=round((seconds - compute) / 40, 3))


def test_sweep_local(benchmark: Any, tmp_path: Path) -> None:
    measure(benchmark, tmp_path)


def test_sweep_process_jobs_2(benchmark: Any, tmp_path: Path) -> None:
    measure(benchmark, tmp_path, executor="process", jobs=2)


def test_sweep_ray_local_cluster_2_cpus(benchmark: Any, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="needs Ray")
    measure(benchmark, tmp_path, executor="ray", jobs=2)


def test_sweep_ray_started_cluster(benchmark: Any, tmp_path: Path, started_cluster: tuple[str, str]) -> None:  # noqa: F811
    measure(benchmark, tmp_path, executor="ray", executor_options={"address": started_cluster[0]})
