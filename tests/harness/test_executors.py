"""Process executor (spawned workers build their registry from entry points) and resume
after a run is killed with SIGKILL half-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.bench import run_benchmark
from harness.plugins import Registry, build_registry
from harness.store import Store

SYNTH = ("synthetic", {"n_train": 1, "n_validation": 0, "n_test": 3, "height": 64, "width": 64})


def test_process_pool_gives_the_same_records_as_in_process(tmp_path: Path) -> None:
    registry = build_registry(warn=False)
    methods = [("otsu", {}), ("otsu", {"min_size": 30})]
    local = run_benchmark(registry, [SYNTH], methods, [0], metrics=["dice", "iou"], store=Store(tmp_path / "a"))
    pooled = run_benchmark(registry, [SYNTH], methods, [0], metrics=["dice", "iou"], store=Store(tmp_path / "b"),
                           executor="process", jobs=2)
    assert pooled.counts() == {"done": 2}
    for cell in local.cells:
        a = [r["values"] for r in Store(tmp_path / "a").images(cell.key)]
        b = [r["values"] for r in Store(tmp_path / "b").images(cell.key)]
        assert a == b


def test_process_timeout_kills_the_cell_and_the_run_goes_on(tmp_path: Path) -> None:
    registry = build_registry(warn=False)
    # thousands of 1024² images: cannot finish within the limit on any machine
    big = ("synthetic", {"n_train": 0, "n_validation": 0, "n_test": 5000, "height": 1024, "width": 1024, "n_objects": 200})
    store = Store(tmp_path / "runs")
    result = run_benchmark(registry, [big, SYNTH], [("otsu", {})], [0], metrics=["dice"], store=store,
                           executor="process", jobs=1, cell_timeout=10.0)
    slow, quick = result.cells
    assert store.cell(slow.key)["error"] == "timeout: cell exceeded 10 s"
    assert store.cell(quick.key)["status"] == "done"


def _bench(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from harness.cli import main; main()", *args], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "BENCH_RUNS": "runs"})


def test_sigkill_half_way_then_resume_equals_a_clean_run(tmp_path: Path) -> None:
    args = ("run", "--datasets", "synthetic(n_train=1,n_validation=0,n_test=6,height=256,width=256,n_objects=40)",
            "--methods", "otsu", "--seeds", "0,1,2,3,4,5", "--metrics", "dice,iou", "--quiet")
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    killed.mkdir()
    clean.mkdir()
    proc = _bench(*args, cwd=killed)
    cells = killed / "runs" / "cells"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = [p for p in cells.glob("*/cell.json")] if cells.is_dir() else []
        if len(done) >= 2:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_before = len(list(cells.glob("*/cell.json")))
    assert 2 <= n_before < 6, "the run must be killed half-way for this test to mean anything"
    killed_run = Store(killed / "runs").run()  # the manifest on disk still says running
    assert killed_run["status"] == "aborted" and str(proc.pid) in killed_run["aborted"]
    assert _bench(*args, cwd=killed).wait() == 0
    assert _bench(*args, cwd=clean).wait() == 0
    a, b = Store(killed / "runs"), Store(clean / "runs")
    assert sorted(a.all_cell_keys()) == sorted(b.all_cell_keys())
    assert not [p for p in cells.iterdir() if p.name.startswith(".tmp-")]
    for key in b.all_cell_keys():
        assert a.cell(key)["status"] == "done"
        rows_a = [(r["sample_id"], r["values"]) for r in a.images(key)]
        rows_b = [(r["sample_id"], r["values"]) for r in b.images(key)]
        assert rows_a == rows_b and len(rows_a) == 6
    latest = a.run()
    assert latest["reused"] == n_before and latest["counts"] == {"done": 6}


def test_registry_fixture_is_not_shared(registry: Registry) -> None:
    assert "decode" in registry.methods
    assert "decode" not in build_registry(warn=False).methods


def test_an_interrupted_run_is_recorded_as_aborted(tmp_path: Path) -> None:
    registry = build_registry(warn=False)
    store = Store(tmp_path / "runs")

    def interrupt(kind, cell, record):  # type: ignore[no-untyped-def]
        if kind == "finished":
            raise KeyboardInterrupt

    try:
        run_benchmark(registry, [SYNTH], [("otsu", {}), ("otsu", {"min_size": 30})], [0], metrics=["dice"],
                      store=store, on_event=interrupt)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the interrupt must reach the caller")
    manifest = store.run()
    assert manifest["status"] == "aborted" and manifest["aborted"] == "KeyboardInterrupt"
    assert manifest["counts"] == {"done": 1}
