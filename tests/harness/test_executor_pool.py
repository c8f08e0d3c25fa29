"""The process executor's reused workers, and the threads every executor gives a cell.

A probe method, installed for real (spawned workers find plugins through entry points), writes
what its process sees while it predicts: its process id, the thread counts of the BLAS/OpenMP
pools (threadpoolctl) and of torch when loaded.  The records must say the same."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
from threadpoolctl import threadpool_info

from harness.bench import run_benchmark
from harness.executors.process import ProcessExecutor
from harness.plugins import build_registry
from harness.store import Store
from harness.types import PluginError
from tests.harness.test_faults_plugins import install

PROBE = textwrap.dedent('''
    import json, os, signal, sys, time
    from harness import Method, Prediction, hookimpl

    class Probe(Method):
        """Writes what its process sees to a new file in BENCH_TEST_PROBES; predicts background."""
        name = "threads-probe"
        outputs = frozenset({"foreground"})

        def __init__(self, use_torch: bool = False, die: bool = False) -> None:
            self.use_torch, self.die = use_torch, die
            if use_torch:  # imported while the method is built, before the cell's limits are set
                import torch  # noqa: F401

        def predict(self, image):
            if self.die:  # as the kernel's out-of-memory killer would
                os.kill(os.getpid(), signal.SIGKILL)
            from threadpoolctl import threadpool_info
            seen = {"pid": os.getpid(), "pools": sorted({p["num_threads"] for p in threadpool_info()})}
            if "torch" in sys.modules:
                seen["torch"] = sys.modules["torch"].get_num_threads()
            folder = os.environ["BENCH_TEST_PROBES"]
            with open(os.path.join(folder, f"{os.getpid()}-{time.monotonic_ns()}.json"), "w") as fh:
                json.dump(seen, fh)
            return Prediction(foreground=image[..., 0] < 0)

    @hookimpl
    def bench_register_methods(register):
        register(Probe)
''')
TINY = ("synthetic", {"n_train": 0, "n_validation": 0, "n_test": 1, "height": 32, "width": 32, "n_objects": 2})


@pytest.fixture(scope="module")
def probe_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("probe-site")
    install(site, "acme-probe", "acme_probe", PROBE)
    return site


@pytest.fixture
def probes(probe_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder the probe writes to; the probe is installed for this process and its workers."""
    monkeypatch.syspath_prepend(str(probe_site))  # a spawned worker starts with this sys.path
    monkeypatch.delenv("BENCH_PLUGINS", raising=False)
    monkeypatch.delenv("BENCH_DISABLE_PLUGINS", raising=False)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "probes"
    folder.mkdir()
    monkeypatch.setenv("BENCH_TEST_PROBES", str(folder))
    return folder


def seen(folder: Path) -> list[dict]:
    """What the probes saw, in the order they wrote it (system-wide monotonic clock)."""
    files = sorted(folder.iterdir(), key=lambda p: int(p.stem.split("-")[1]))
    return [json.loads(p.read_text()) for p in files]


def stored(store: Path, key: str) -> dict[str, Any]:
    record = Store(store).cell(key)
    assert record is not None
    return record.to_json()


def run(store: Path, methods: list, seeds: list[int], **kwargs):  # type: ignore[no-untyped-def]
    return run_benchmark(build_registry(warn=False), [TINY], methods, seeds, metrics=["dice"], store=Store(store),
                         **kwargs)


CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@pytest.mark.parametrize(("jobs", "omp", "use_torch", "expected"), [
    (2, None, True, max(1, CPUS // 2)),
    (1, None, False, CPUS),
    (2, "3", False, 3),  # the user's OMP_NUM_THREADS wins
], ids=["jobs2-torch", "jobs1", "jobs2-omp3"])
def test_process_workers_run_with_the_recorded_threads(probes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      jobs: int, omp: str | None, use_torch: bool,
                                                      expected: int) -> None:
    if omp:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    if use_torch:
        pytest.importorskip("torch")
    result = run(tmp_path / "runs", [("threads-probe", {"use_torch": use_torch})], [0, 1], executor="process",
                 jobs=jobs)
    assert [stored(tmp_path / "runs", c.key).get("threads") for c in result.cells] == [expected, expected]
    observed = seen(probes)
    assert len(observed) == 2
    for one in observed:
        assert one["pools"] == [expected]  # numpy's BLAS, and OpenMP where loaded
        assert one.get("torch", expected) == expected
    assert ("torch" in observed[0]) == use_torch


def test_local_limits_its_threads_for_the_cell_and_restores_them(probes: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    before = sorted((p["filepath"], p["num_threads"]) for p in threadpool_info())
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # this process's pools started with more (unless CPUS == 1)
    result = run(tmp_path / "runs", [("threads-probe", {})], [0], executor="local")
    assert stored(tmp_path / "runs", result.cells[0].key)["threads"] == 1
    [one] = seen(probes)
    assert one["pid"] == os.getpid() and one["pools"] == [1]
    after = {p["filepath"]: p["num_threads"] for p in threadpool_info()}
    assert [(path, after[path]) for path, _ in before] == before  # the pools loaded before the cell, as they were


def test_local_uses_every_cpu_without_omp_num_threads(probes: Path, tmp_path: Path) -> None:
    result = run(tmp_path / "runs", [("threads-probe", {})], [0], executor="local")
    assert stored(tmp_path / "runs", result.cells[0].key)["threads"] == CPUS
    assert seen(probes)[0]["pools"] == [CPUS]


def test_a_bad_omp_num_threads_is_refused_before_the_run(probes: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    with pytest.raises(ValueError, match=r"OMP_NUM_THREADS='many' is not a positive whole number"):
        run(tmp_path / "runs", [("threads-probe", {})], [0], executor="process")
    assert not (tmp_path / "runs" / "cells").exists() or not list((tmp_path / "runs" / "cells").iterdir())


def test_workers_are_reused_across_cells(probes: Path, tmp_path: Path) -> None:
    result = run(tmp_path / "runs", [("threads-probe", {})], list(range(6)), executor="process", jobs=2)
    assert result.counts() == {"done": 6}
    pids = {one["pid"] for one in seen(probes)}
    assert len(pids) <= 2 and os.getpid() not in pids  # six cells, at most two worker processes


def test_max_cells_per_worker_replaces_workers(probes: Path, tmp_path: Path) -> None:
    result = run(tmp_path / "runs", [("threads-probe", {})], list(range(4)), executor="process", jobs=1,
                 executor_options={"max_cells_per_worker": 2})
    assert result.counts() == {"done": 4}
    pids = [one["pid"] for one in seen(probes)]  # in the order the cells ran, one at a time
    assert pids[0] == pids[1] != pids[2] == pids[3]


def test_a_killed_worker_is_an_error_record_and_the_pool_goes_on(probes: Path, tmp_path: Path) -> None:
    methods = [("threads-probe", {"die": True}), ("threads-probe", {})]
    result = run(tmp_path / "runs", methods, [0, 1], executor="process", jobs=1)
    records = {(c.label, c.seed): stored(tmp_path / "runs", c.key) for c in result.cells}
    for seed in (0, 1):
        dead = records[("threads-probe(die=True)", seed)]
        assert dead["status"] == "error" and dead["error"] == "worker process killed by SIGKILL (out of memory?)"
        assert records[("threads-probe", seed)]["status"] == "done"
    assert len(seen(probes)) == 2


@pytest.mark.parametrize("value", ["-1", "two", 1.5])
def test_pool_options_must_be_whole_numbers(tmp_path: Path, value: object) -> None:
    with pytest.raises(PluginError, match="executor 'process': max_cells_per_worker must be a whole number"):
        ProcessExecutor(tmp_path, options={"max_cells_per_worker": value})
