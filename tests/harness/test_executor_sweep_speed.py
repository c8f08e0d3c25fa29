"""Throughput of one 40-cell sweep (classical methods × synthetic sizes × seeds) per executor.

Benchmarks only (``pytest tests/harness/test_executor_sweep_speed.py --benchmark-enable``);
skipped in the test run, before any cluster is started.
Each records cells per minute and the per-cell overhead against the in-process serial run.
"""

from __future__ import annotations

import os
import statistics
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


def test_sweep_process_jobs_1(benchmark: Any, tmp_path: Path) -> None:
    measure(benchmark, tmp_path, executor="process", jobs=1)


def test_sweep_process_jobs_2(benchmark: Any, tmp_path: Path) -> None:
    measure(benchmark, tmp_path, executor="process", jobs=2)


INTERLEAVED = {"local": {}, "process_jobs_1": {"executor": "process", "jobs": 1},
               "process_jobs_2": {"executor": "process", "jobs": 2}}


def test_sweep_interleaved_local_and_process(benchmark: Any, tmp_path: Path) -> None:
    """local, process --jobs 1, process --jobs 2, in turn, ``ROUNDS`` times: on a machine shared
    with other work only ratios from interleaved runs mean something.  Records the median cells
    per minute of each, the ratios and the load average before and after."""
    rounds = 3
    seconds: dict[str, list[float]] = {name: [] for name in INTERLEAVED}
    load = [round(os.getloadavg()[0], 2)]

    def interleaved() -> None:
        for turn in range(rounds):
            for name, kwargs in INTERLEAVED.items():
                seconds[name].append(sweep(Store(tmp_path / f"{name}-{turn}"), **kwargs))

    benchmark.pedantic(interleaved, rounds=1, iterations=1)
    load.append(round(os.getloadavg()[0], 2))
    rate = {name: round(40 * 60 / statistics.median(s), 1) for name, s in seconds.items()}
    benchmark.extra_info.update(
        cells_per_min=rate, seconds={name: [round(x, 2) for x in s] for name, s in seconds.items()},
        jobs2_over_jobs1=round(rate["process_jobs_2"] / rate["process_jobs_1"], 2),
        jobs1_over_local=round(rate["process_jobs_1"] / rate["local"], 2),
        jobs2_over_local=round(rate["process_jobs_2"] / rate["local"], 2), load_average_1min=load)


def test_sweep_ray_local_cluster_2_cpus(benchmark: Any, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="needs Ray")
    measure(benchmark, tmp_path, executor="ray", jobs=2)


def test_sweep_ray_started_cluster(benchmark: Any, tmp_path: Path, started_cluster: tuple[str, str]) -> None:  # noqa: F811
    measure(benchmark, tmp_path, executor="ray", executor_options={"address": started_cluster[0]})
