"""Run each cell in its own spawn-started process, up to ``jobs`` at once.

A process per cell frees all of a cell's memory when it ends, and lets the driver kill a cell
that exceeds its time limit or dies (e.g. killed for memory) without losing the run.  Workers
build their own plugin registry from the installed entry points (the same environment
variables apply), so plugins registered only in memory need the ``local`` executor.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import time
from collections.abc import Iterator
from typing import Any

from harness.executors.base import Executor, error_record
from harness.runner import CellSpec, execute_cell, spec_from_dict, spec_to_dict
from harness.store import Store


def _child(spec: dict[str, Any], store_root: str, started: Any) -> None:
    # the time limit counts the cell's work, not process start-up, imports and plugin loading
    execute_cell(spec_from_dict(spec), store_root, on_start=started.set)


STARTUP_LIMIT_S = 600  # a worker that cannot even load its plugins in this time is stuck


class ProcessExecutor(Executor):
    name = "process"
    description = "each cell in its own spawned process, --jobs at once (hard time limit)"
    poll_s = 0.05

    def as_completed(self) -> Iterator[tuple[CellSpec, dict[str, Any]]]:
        ctx = mp.get_context("spawn")
        store = Store(self.store_root)
        running: dict[str, tuple[CellSpec, Any, Any, float]] = {}
        self._running = running
        began: dict[str, float] = {}
        try:
            while (self._pending or running) and not self._cancelled:
                while self._pending and len(running) < self.jobs:
                    cell = self._pending.pop(0)
                    started = ctx.Event()
                    proc = ctx.Process(target=_child, args=(spec_to_dict(cell), str(self.store_root), started),
                                       name=f"bench-cell-{cell.key}", daemon=True)
                    proc.start()
                    running[cell.key] = (cell, proc, started, time.time())
                for key, (cell, proc, started, wall) in list(running.items()):
                    if key not in began and started.is_set():
                        began[key] = time.monotonic()
                    if proc.is_alive():
                        if not started.is_set() and time.time() - wall > STARTUP_LIMIT_S:
                            proc.kill()
                            proc.join()
                            del running[key]
                            yield cell, error_record(cell, f"worker did not start the cell within {STARTUP_LIMIT_S} s", self.store_root)
                            continue
                        if self.cell_timeout and key in began and time.monotonic() - began[key] > self.cell_timeout:
                            proc.kill()
                            proc.join()
                            del running[key]
                            yield cell, error_record(cell, f"timeout: cell exceeded {self.cell_timeout:g} s", self.store_root)
                        continue
                    proc.join()
                    del running[key]
                    record = store.cell(key) if _written_since(store, key, wall) else None
                    if record is None:
                        yield cell, error_record(cell, _death_message(proc.exitcode), self.store_root)
                    else:
                        yield cell, record
                time.sleep(self.poll_s)
        finally:
            self._kill(running)

    def cancel(self) -> None:
        super().cancel()
        self._kill(getattr(self, "_running", {}))

    @staticmethod
    def _kill(running: dict[str, tuple[CellSpec, Any, Any, float]]) -> None:
        for _, proc, _, _ in list(running.values()):
            proc.kill()
        for _, proc, _, _ in list(running.values()):
            proc.join(timeout=5)
        running.clear()


def _death_message(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"worker process killed by {name}{hint}"
    return f"worker process exited with code {exitcode} without writing a record"


def _written_since(store: Store, key: str, wall: float) -> bool:
    """True when this attempt wrote the cell (an older record may exist from an earlier run)."""
    path = store.cell_dir(key) / "cell.json"
    return path.is_file() and path.stat().st_mtime >= wall - 0.05
