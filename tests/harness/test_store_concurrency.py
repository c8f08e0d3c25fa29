"""Writers of one cell take turns; the cleaner removes only dead or stale writers' folders."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

from harness.store import Store

ROWS = [{"split": "test", "sample_id": f"s{i}", "status": "ok"} for i in range(50)]
CELL = {"status": "done", "dataset": "d", "method": "m", "label": "m", "params": {}, "seed": 0}


def _writer(root: str, start, tag: int, rounds: int, out) -> None:  # type: ignore[no-untyped-def]
    store = Store(root)
    start.wait(timeout=30)
    try:
        for _ in range(rounds):
            store.write_cell("k1", {**CELL, "writer": tag}, ROWS, {"blob.bin": bytes([tag]) * 1000})
        out.put((tag, "ok"))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        out.put((tag, f"{type(exc).__name__}: {exc}"))


def test_two_processes_writing_one_cell_both_succeed(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), start, tag, 15, out)) for tag in (1, 2)]
    for p in procs:
        p.start()
    start.set()
    results = sorted(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert results == [(1, "ok"), (2, "ok")]
    store = Store(tmp_path)
    record = store.cell("k1")
    assert record is not None and record["writer"] in (1, 2)
    assert store.images("k1") == ROWS
    blob = (store.cell_dir("k1") / "blob.bin").read_bytes()
    assert blob == bytes([record["writer"]]) * 1000  # files and record from the same writer
    assert [p.name for p in store.cells_dir.iterdir() if p.name.startswith(".tmp-")] == []


def test_finished_by_another_writer_is_kept(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.write_cell("k1", {**CELL, "writer": 1}, ROWS)
    store.write_cell("k1", {**CELL, "writer": 2}, ROWS, replace_finished=False)
    assert store.cell("k1")["writer"] == 1  # type: ignore[index]
    store.write_cell("k1", {**CELL, "writer": 3}, ROWS)
    assert store.cell("k1")["writer"] == 3  # type: ignore[index]


def test_cleaner_leaves_a_live_writers_folder_alone(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.cells_dir.mkdir(parents=True)
    ctx = mp.get_context("fork")
    dead = ctx.Process(target=time.sleep, args=(0,))
    dead.start()
    dead.join(timeout=30)
    assert dead.pid is not None
    live = store.cells_dir / f".tmp-k1-{os.getpid()}-0123abcd"
    gone = store.cells_dir / f".tmp-k2-{dead.pid}-0123abcd"
    stale = store.cells_dir / f".tmp-old-k3-{os.getpid()}-0123abcd"
    unnamed = store.cells_dir / ".tmp-unparseable"
    for folder in (live, gone, stale, unnamed):
        folder.mkdir()
        (folder / "images.jsonl").write_text("")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    assert store.clean_partial(max_age_s=3600) == 3
    assert live.is_dir() and not gone.exists() and not stale.exists() and not unnamed.exists()


def test_readers_never_see_a_cell_missing_during_a_replace(tmp_path: Path) -> None:
    import threading
    import warnings

    store = Store(tmp_path)
    store.write_cell("k1", CELL, ROWS)
    stop = threading.Event()

    def replace() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            store.write_cell("k1", {**CELL, "n": n}, ROWS)

    writer = threading.Thread(target=replace)
    writer.start()
    missing = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a replace must not look like damage either
            for _ in range(300):
                reader = Store(tmp_path)
                if reader.cell("k1") is None or reader.images("k1") != ROWS:
                    missing += 1
    finally:
        stop.set()
        writer.join(timeout=30)
    assert missing == 0
