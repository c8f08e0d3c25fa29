"""The SLURM executor through submitit's local executor (the same code path up to the
scheduler): records equal the local executor's, logs land in the store, and a task preempted
mid-cell (SLURM's warning before preemption or the time limit) is requeued and stored once."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

submitit = pytest.importorskip("submitit", reason="the slurm executor tests need submitit: pip install 'segbench[slurm]'")

from harness.bench import run_benchmark  # noqa: E402
from harness.executors.slurm import STARTED, SlurmExecutor  # noqa: E402
from harness.plugins import build_registry  # noqa: E402
from harness.runner import plan  # noqa: E402
from harness.store import Store  # noqa: E402
from harness.types import PluginError  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SYNTH = ("synthetic", {"n_train": 1, "n_validation": 0, "n_test": 4, "height": 96, "width": 96, "n_objects": 8})
LONG = ("synthetic", {"n_train": 0, "n_validation": 0, "n_test": 20, "height": 384, "width": 384, "n_objects": 40})
WAIT_S = 120


@pytest.fixture(autouse=True)
def _tasks_import_this_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("BENCH_PLUGINS", raising=False)
    monkeypatch.delenv("BENCH_DISABLE_PLUGINS", raising=False)


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items()
            if k not in ("started", "finished", "images", "timing", "concurrent_workers")
            and not k.endswith(("_s", "_ms", "_mb"))}


def rows(store: Store, key: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "predict_s"} for r in store.images(key)]


def test_array_through_submitit_equals_the_local_executor(tmp_path: Path) -> None:
    registry = build_registry(warn=False)
    methods = [("otsu", {}), ("otsu", {"min_size": 30})]
    a, b = Store(tmp_path / "local"), Store(tmp_path / "slurm")
    local = run_benchmark(registry, [SYNTH], methods, [0], metrics=["dice", "iou"], store=a)
    array = run_benchmark(registry, [SYNTH], methods, [0], metrics=["dice", "iou"], store=b, executor="slurm",
                          executor_options={"cluster": "local", "time": 5})
    assert array.counts() == {"done": 2}
    for cell in local.cells:
        assert comparable(b.cell(cell.key)) == comparable(a.cell(cell.key))
        assert ((b.cell(cell.key) or {})["timing"], (b.cell(cell.key) or {})["concurrent_workers"]) == ("concurrent", 2)
        assert ((a.cell(cell.key) or {})["timing"], (a.cell(cell.key) or {})["concurrent_workers"]) == ("isolated", 1)
        assert rows(b, cell.key) == rows(a, cell.key) and len(rows(b, cell.key)) == 4
    logs = sorted(p.name for p in (b.root / "slurm").rglob("*_log.out"))
    assert len(logs) == 2 and all(STARTED in p.read_text() for p in (b.root / "slurm").rglob("*_log.out"))


@pytest.mark.slow
def test_task_signalled_mid_cell_is_requeued_and_stored_once(tmp_path: Path) -> None:
    registry = build_registry(warn=False)
    (cell,) = plan(registry, [LONG], [("otsu", {})], [0], metrics=["dice", "iou"])
    store = Store(tmp_path / "slurm")
    executor = SlurmExecutor(store.root, registry=registry, options={"cluster": "local", "time": 5})
    executor.submit(cell)
    preempted: list[str] = []

    def preempt_once_started() -> None:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            jobs = list(executor.submitted)
            if jobs and Path(jobs[0].paths.stdout).is_file() and STARTED in Path(jobs[0].paths.stdout).read_text():
                time.sleep(0.3)  # evaluating images now
                # what SLURM does before preempting: signal the task (submitit's controller
                # process on this machine stands in for slurmstepd)
                (task,) = psutil.Process(int(jobs[0].job_id)).children()
                task.send_signal(signal.SIGUSR2)
                preempted.append(jobs[0].job_id)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=preempt_once_started, daemon=True)
    thread.start()
    results = list(executor.as_completed())
    thread.join(timeout=5)
    assert preempted, "the task was never seen starting the cell"
    log = Path(executor.submitted[0].paths.stdout).read_text()
    assert log.count(STARTED) == 2 and "Requeued job" in log  # run, signalled, requeued, run again
    assert [(c.key, r["status"]) for c, r in results] == [(cell.key, "done")]
    assert list(store.all_cell_keys()) == [cell.key] and len(store.images(cell.key)) == 20


def test_a_real_cluster_needs_a_partition(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match="executor 'slurm' needs a partition: pass --slurm-partition NAME"):
        SlurmExecutor(tmp_path, options={"time": 10})
    with pytest.raises(PluginError, match="cluster must be slurm, local or debug, not 'lsf'"):
        SlurmExecutor(tmp_path, options={"cluster": "lsf"})
