"""GPU pinning in the process executor: each GPU cell's process sees one GPU, the record says
which, and cells that shared a GPU say so.  Pinning is an environment variable, so this is
checked on any machine: the children's environments are read while they run."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from pathlib import Path

import psutil
import pytest

from harness.executors.process import ProcessExecutor, gpu_list
from harness.plugins import build_registry
from harness.runner import CellSpec, plan
from harness.store import Store

SYNTH = ("synthetic", {"n_train": 1, "n_validation": 0, "n_test": 3, "height": 64, "width": 64})


def gpu_cells(n: int) -> list[CellSpec]:
    registry = build_registry(warn=False)
    cells = plan(registry, [SYNTH], [("otsu", {})], list(range(n)), metrics=["dice"])
    # otsu ignores the device; the executor pins by the device a cell asks for
    return [dataclasses.replace(c, device="cuda") for c in cells]


def run_watching_environments(executor: ProcessExecutor) -> tuple[list, dict[str, str]]:
    seen: dict[str, str] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for key, worker in list(executor._running.items()):
                with contextlib.suppress(psutil.Error, ValueError):
                    seen.setdefault(key, psutil.Process(worker.proc.pid).environ().get("CUDA_VISIBLE_DEVICES", "<unset>"))
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        results = list(executor.as_completed())
    finally:
        stop.set()
        thread.join(timeout=5)
    return results, seen


def test_one_gpu_per_running_cell(tmp_path: Path) -> None:
    cells = gpu_cells(4)
    executor = ProcessExecutor(tmp_path, jobs=2, options={"gpus": "0,1"})
    for cell in cells:
        executor.submit(cell)
    results, seen = run_watching_environments(executor)
    assert sorted(r["status"] for _, r in results) == ["done"] * 4
    store = Store(tmp_path)
    pinned = {c.key: store.cell(c.key)["cuda_visible_devices"] for c in cells}
    assert set(pinned.values()) <= {"0", "1"}
    assert [pinned[c.key] for c in cells[:2]] == ["0", "1"]  # both idle at the start: one each
    assert all(store.cell(c.key)["gpu_shared"] is False for c in cells)  # jobs == GPUs: never shared
    assert seen and all(seen[k] == pinned[k] for k in seen)  # what each child actually saw
    assert all(len(store.images(c.key)) == 3 for c in cells)


def test_more_jobs_than_gpus_is_said_and_recorded(tmp_path: Path) -> None:
    cells = gpu_cells(2)
    executor = ProcessExecutor(tmp_path, jobs=2, options={"gpus": "0"})
    for cell in cells:
        executor.submit(cell)
    with pytest.warns(UserWarning, match=r"--jobs 2 over 1 GPU\(s\): GPU cells will share a GPU"):
        results, _ = run_watching_environments(executor)
    store = Store(tmp_path)
    assert [store.cell(c.key)["cuda_visible_devices"] for c in cells] == ["0", "0"]
    assert [store.cell(c.key)["gpu_shared"] for c in cells] == [True, True]  # ran together on GPU 0


def test_cpu_cells_see_no_gpu_and_carry_no_gpu_fields(tmp_path: Path) -> None:
    registry = build_registry(warn=False)
    (cell,) = plan(registry, [SYNTH], [("otsu", {})], [0], metrics=["dice"])
    assert cell.device == "cpu"
    executor = ProcessExecutor(tmp_path, options={"gpus": "0,1"})
    executor.submit(cell)
    results, seen = run_watching_environments(executor)
    assert results[0][1]["status"] == "done" and "cuda_visible_devices" not in Store(tmp_path).cell(cell.key)
    assert seen.get(cell.key, "") == ""


def test_gpu_lists() -> None:
    assert gpu_list("0, 1") == ["0", "1"] and gpu_list((2, 3)) == ["2", "3"] and gpu_list(1) == ["1"]
    assert gpu_list(None) == []
    with pytest.raises(ValueError, match="names a GPU twice"):
        gpu_list("0,0")
