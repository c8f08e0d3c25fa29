"""The Ray executor on an in-process local cluster and on a cluster started with ``ray start``.

Workers import the harness from this checkout (``PYTHONPATH``), as an installed segbench
would be imported on a real cluster's nodes.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

ray = pytest.importorskip("ray", reason="the ray executor tests need Ray: pip install 'segbench[ray]'")

from harness.bench import run_benchmark  # noqa: E402
from harness.executors.ray import RayExecutor  # noqa: E402
from harness.plugins import Registry, build_registry  # noqa: E402
from harness.runner import CellSpec, plan  # noqa: E402
from harness.store import Store  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SYNTH = ("synthetic", {"n_train": 1, "n_validation": 0, "n_test": 4, "height": 96, "width": 96, "n_objects": 8})
# long enough to be killed half-way (a couple of seconds), short enough to run twice
LONG = ("synthetic", {"n_train": 0, "n_validation": 0, "n_test": 20, "height": 384, "width": 384, "n_objects": 40})
# thousands of 1024² images: cannot finish within any time limit used here
ENDLESS = ("synthetic", {"n_train": 0, "n_validation": 0, "n_test": 5000, "height": 1024, "width": 1024,
                         "n_objects": 200})
OBJECT_STORE = 80 * 2**20
WAIT_S = 120


@pytest.fixture(scope="module", autouse=True)
def _workers_import_this_checkout() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        patch.setenv("OMP_NUM_THREADS", "1")
        patch.delenv("BENCH_PLUGINS", raising=False)
        patch.delenv("BENCH_DISABLE_PLUGINS", raising=False)
        yield


@pytest.fixture(scope="module")
def local_cluster() -> Iterator[None]:
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=OBJECT_STORE,
             logging_level="WARNING")
    try:
        yield
    finally:
        ray.shutdown()


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A record without what differs between two honest runs: clocks, timings (and whether they
    were taken beside other cells), memory, and the digest of the per-image rows (which hold timings; the rows are compared without them)."""
    return {k: v for k, v in record.items()
            if k not in ("started", "finished", "images", "timing", "concurrent_workers")
            and not k.endswith(("_s", "_ms", "_mb"))}


def rows(store: Store, key: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "predict_s"} for r in store.images(key)]


def assert_same_as_local(registry: Registry, tmp_path: Path, ray_store: Store, datasets: list, methods: list,
                         seeds: list[int]) -> None:
    local_store = Store(tmp_path / "local")
    local = run_benchmark(registry, datasets, methods, seeds, metrics=["dice", "iou"], store=local_store)
    for cell in local.cells:
        assert comparable(ray_store.cell(cell.key)) == comparable(local_store.cell(cell.key))
        assert rows(ray_store, cell.key) == rows(local_store, cell.key)
        assert len(rows(ray_store, cell.key)) == datasets[0][1]["n_test"]
        # the predict stage travelled back from the worker with the cell: identical predictions
        ray_stage, local_stage = ray_store.stage(cell.predict_key), local_store.stage(cell.predict_key)
        assert ray_stage is not None and local_stage is not None
        assert ray_stage["files"]["predictions.npz"] == local_stage["files"]["predictions.npz"]


def ray_titles(key: str) -> list[psutil.Process]:
    """Worker processes that run this cell (Ray titles a busy worker ``ray::<task name>``)."""
    out = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info.get("cmdline") or []
        if cmd and cmd[0].startswith(f"ray::bench-cell-{key}"):
            out.append(proc)
    return out


def wait_until(condition: Any, what: str, limit: float = WAIT_S) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {limit:g} s waiting for {what}")
        time.sleep(0.05)


def test_local_cluster_records_equal_the_local_executor(local_cluster: None, tmp_path: Path) -> None:
    registry = build_registry(warn=False)
    methods = [("otsu", {}), ("otsu", {"min_size": 30})]
    store = Store(tmp_path / "ray")
    result = run_benchmark(registry, [SYNTH], methods, [0, 1], metrics=["dice", "iou"], store=store, executor="ray")
    assert result.counts() == {"done": 4}
    assert store.run(result.run_id)["executor"] == "ray"
    assert_same_as_local(registry, tmp_path, store, [SYNTH], methods, [0, 1])
    # 4 one-CPU cells on a 2-CPU cluster: two at a time, and every record says so
    assert [(store.cell(c.key) or {}).get("timing") for c in result.cells] == ["concurrent"] * 4
    assert {(store.cell(c.key) or {}).get("concurrent_workers") for c in result.cells} == {2}


@pytest.mark.slow
def test_worker_killed_mid_cell_is_retried_and_stored_once(local_cluster: None, tmp_path: Path) -> None:
    registry = build_registry(warn=False)
    (cell,) = plan(registry, [LONG], [("otsu", {})], [0], metrics=["dice", "iou"])
    store = Store(tmp_path / "ray")
    executor = RayExecutor(store.root, registry=registry, options={"max_retries": 2})
    executor.submit(cell)
    killed: list[int] = []

    def kill_first_attempt() -> None:
        deadline = time.monotonic() + WAIT_S
        while cell.key not in executor.placements and time.monotonic() < deadline:
            time.sleep(0.02)
        if cell.key in executor.placements:
            time.sleep(0.3)  # the cell has loaded its plugins and is evaluating images
            pid = executor.placements[cell.key][1]
            if psutil.Process(pid).cmdline()[0].startswith(f"ray::bench-cell-{cell.key}"):  # still on it
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    killer = threading.Thread(target=kill_first_attempt, daemon=True)
    killer.start()
    results = list(executor.as_completed())
    killer.join(timeout=5)
    assert killed, "the worker was not caught in the middle of the cell"
    assert [(c.key, r["status"]) for c, r in results] == [(cell.key, "done")]
    assert list(store.all_cell_keys()) == [cell.key]
    assert not [p for p in store.cells_dir.iterdir() if p.name.startswith(".tmp-")]  # no partial cell left
    assert_same_as_local(registry, tmp_path, store, [LONG], [("otsu", {})], [0])


@pytest.mark.slow
def test_time_limit_and_interrupt_cancel_their_tasks(local_cluster: None, tmp_path: Path) -> None:
    registry = build_registry(warn=False)
    store = Store(tmp_path / "ray")
    endless, quick = plan(registry, [ENDLESS, SYNTH], [("otsu", {})], [0], metrics=["dice"])
    result = run_benchmark(registry, [ENDLESS, SYNTH], [("otsu", {})], [0], metrics=["dice"], store=store,
                           executor="ray", cell_timeout=3.0)
    assert store.cell(endless.key)["error"] == "timeout: cell exceeded 3 s"
    assert store.cell(quick.key)["status"] == "done" and result.counts() == {"done": 1, "error": 1}
    wait_until(lambda: not ray_titles(endless.key), "the timed-out task's worker to be killed", 30)

    # Ctrl-C while the endless cell runs: its task is cancelled and it leaves no record
    def interrupt(kind: str, cell: CellSpec, record: Any) -> None:
        if kind == "finished":
            raise KeyboardInterrupt

    fresh = Store(tmp_path / "interrupted")
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(registry, [ENDLESS, SYNTH], [("otsu", {})], [0], metrics=["dice"], store=fresh,
                      executor="ray", on_event=interrupt)
    assert list(fresh.all_cell_keys()) == [quick.key]
    wait_until(lambda: not ray_titles(endless.key), "the cancelled task's worker to be killed", 30)


def test_a_cell_no_node_can_run_is_an_error_not_a_wait(local_cluster: None, tmp_path: Path) -> None:
    registry = build_registry(warn=False)
    (cell,) = plan(registry, [SYNTH], [("otsu", {})], [0], metrics=["dice"])
    executor = RayExecutor(tmp_path, registry=registry, options={"num_gpus": 1})
    executor.feasibility_s = 0.5
    executor.submit(cell)
    ((_, record),) = list(executor.as_completed())
    assert record["error"] == "no node of the Ray cluster offers 1 CPU, 1 GPU (nodes: 2 CPU, 0 GPU)"
