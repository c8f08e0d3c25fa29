"""Run each cell in its own spawn-started process, up to ``jobs`` at once.

A process per cell frees all of a cell's memory when it ends, and lets the driver kill a cell
that exceeds its time limit or dies (e.g. killed for memory) without losing the run.  Workers
build their own plugin registry from the installed entry points (the same environment
variables apply), so plugins registered only in memory need the ``local`` executor.

With ``gpus`` (``--gpus 0,1``) each GPU cell's process sees one GPU through
``CUDA_VISIBLE_DEVICES`` (the least busy, ties in turn; CPU cells see none), and the stored
record says which (``cuda_visible_devices``) and whether another cell used that GPU while it ran
(``gpu_shared``): with no more jobs than GPUs that never happens.

Workers die with the driver: killed (SIGKILL, SIGTERM) or crashed, it leaves no worker behind
(:class:`WorkerGuard`), and a worker also stops its own cell a little after ``cell_timeout``
when the driver cannot.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

from harness.executors.base import Executor, cell_payload, error_record, with_timing
from harness.runner import CellSpec, execute_cell, spec_from_dict, spec_to_dict
from harness.store import Store

STARTUP_LIMIT_S = 600  # a worker that cannot even load its plugins in this time is stuck
#: exit status of a worker that stopped its own cell for the time limit (as timeout(1) does)
TIMEOUT_EXIT = 124
#: the worker's own limit trails the driver's by this much, so the driver normally stops the
#: cell (and writes its record); the worker's matters when the driver cannot (stopped, stuck)
WORKER_GRACE_S = 2.0
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _child(spec: dict[str, Any], store_root: str, started: Any, driver_pid: int | None = None,
           cell_timeout: float | None = None) -> None:
    guard = WorkerGuard(driver_pid if driver_pid is not None else os.getppid())
    guard.start()

    def on_start() -> None:
        # the time limit counts the cell's work, not process start-up, imports and plugin loading
        if cell_timeout:
            guard.limit(cell_timeout + WORKER_GRACE_S)
        started.set()

    execute_cell(spec_from_dict(spec), store_root, on_start=on_start)


class WorkerGuard:
    """Ends a worker process when its driver is gone or its cell is past the time limit.

    On Linux the kernel sends the worker SIGKILL when the driver dies (``PR_SET_PDEATHSIG``:
    this works even while the worker is stuck in native code); on every platform a daemon
    thread polls the parent pid and ends the worker with ``os._exit`` once the worker has been
    handed to another parent.  ``limit(seconds)`` makes the same thread end the worker with
    :data:`TIMEOUT_EXIT` that many seconds from now.  The thread needs the interpreter's lock,
    so a native call that holds it for long delays the pid check and the limit (not the
    kernel's signal).  The kernel's signal follows the driver *thread* that started the
    worker; ``as_completed`` starts and waits for its workers in one thread, which lives as
    long as they do."""

    def __init__(self, driver_pid: int, poll_s: float = 0.2) -> None:
        self.driver_pid = driver_pid
        self.poll_s = poll_s
        self.deadline: float | None = None
        self._wake = threading.Event()

    def start(self) -> None:
        _kill_with_parent()
        if os.getppid() != self.driver_pid:  # the driver died before the signal was armed
            os._exit(1)
        threading.Thread(target=self._watch, name="bench-worker-guard", daemon=True).start()

    def limit(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self._wake.set()

    def _watch(self) -> None:
        while True:
            if os.getppid() != self.driver_pid:
                os._exit(1)  # orphaned: nobody will read this cell's result
            if self.deadline is not None and time.monotonic() >= self.deadline:
                os._exit(TIMEOUT_EXIT)
            self._wake.wait(self.poll_s)
            self._wake.clear()


def _kill_with_parent() -> bool:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux); False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


class ProcessExecutor(Executor):
    name = "process"
    description = "each cell in its own spawned process, --jobs at once (hard time limit)"
    options: ClassVar[Mapping[str, str]] = {
        "gpus": "GPU ids, e.g. 0,1: each GPU cell's process sees one (CUDA_VISIBLE_DEVICES), least busy first",
    }
    poll_s = 0.05

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gpus = gpu_list(self.settings.get("gpus"))
        self._gpu_of: dict[str, str] = {}
        self._shared: set[str] = set()
        self._turn = 0

    def _place(self, cell: CellSpec, running: Mapping[str, Any]) -> str | None:
        """The GPU for a cell: the one with fewest running cells (ties in turn); None off GPU."""
        if not self.gpus or not cell.device.startswith("cuda"):
            return None
        load = {g: [k for k in running if self._gpu_of.get(k) == g] for g in self.gpus}
        order = self.gpus[self._turn % len(self.gpus):] + self.gpus[:self._turn % len(self.gpus)]
        gpu = min(order, key=lambda g: len(load[g]))
        self._turn += 1
        if load[gpu]:  # timings of cells that share a GPU are not comparable: say so in both records
            self._shared.update([*load[gpu], cell.key])
        self._gpu_of[cell.key] = gpu
        return gpu

    def _annotate(self, store: Store, key: str, record: Mapping[str, Any]) -> Mapping[str, Any]:
        """Add the pinned GPU (and whether another cell ran on it meanwhile) to a stored cell."""
        gpu = self._gpu_of.get(key)
        if gpu is None:
            return record
        stored, images, files = cell_payload(store, key)
        stored.update(cuda_visible_devices=gpu, gpu_shared=key in self._shared)
        store.write_cell(key, stored, images, files)
        return stored

    def as_completed(self) -> Iterator[tuple[CellSpec, Mapping[str, Any]]]:
        ctx = mp.get_context("spawn")
        store = Store(self.store_root)
        if self.gpus and self.jobs > len(self.gpus) and any(c.device.startswith("cuda") for c in self._pending):
            warnings.warn(f"--jobs {self.jobs} over {len(self.gpus)} GPU(s): GPU cells will share a GPU; their "
                          "records say gpu_shared=true and their timings are not comparable", stacklevel=2)
        # timings of cells that run side by side share the CPUs: the records say so
        workers = min(self.jobs, len(self._pending))
        self._pending = [with_timing(c, workers) for c in self._pending]
        running: dict[str, tuple[CellSpec, Any, Any, float]] = {}
        self._running = running
        began: dict[str, float] = {}
        try:
            while (self._pending or running) and not self._cancelled:
                while self._pending and len(running) < self.jobs:
                    cell = self._pending.pop(0)
                    started = ctx.Event()
                    proc = ctx.Process(target=_child, args=(spec_to_dict(cell), str(self.store_root), started,
                                                            os.getpid(), self.cell_timeout),
                                       name=f"bench-cell-{cell.key}", daemon=True)
                    gpu = self._place(cell, running)
                    with _environment(None if not self.gpus else {"CUDA_VISIBLE_DEVICES": gpu or ""}):
                        proc.start()  # a spawned child inherits the environment as it is now
                    running[cell.key] = (cell, proc, started, time.time())
                for key, (cell, proc, started, wall) in list(running.items()):
                    if key not in began and started.is_set():
                        began[key] = time.monotonic()
                    if proc.is_alive():
                        if not started.is_set() and time.time() - wall > STARTUP_LIMIT_S:
                            proc.kill()
                            proc.join()
                            del running[key]
                            error_record(cell, f"worker did not start the cell within {STARTUP_LIMIT_S} s", store.root)
                            yield cell, self._annotate(store, key, store.cell(key) or {})
                            continue
                        if self.cell_timeout and key in began and time.monotonic() - began[key] > self.cell_timeout:
                            proc.kill()
                            proc.join()
                            del running[key]
                            error_record(cell, f"timeout: cell exceeded {self.cell_timeout:g} s", store.root)
                            yield cell, self._annotate(store, key, store.cell(key) or {})
                        continue
                    proc.join()
                    del running[key]
                    record = store.cell(key) if _written_since(store, key, wall) else None
                    if record is None and proc.exitcode == TIMEOUT_EXIT and self.cell_timeout:
                        error_record(cell, f"timeout: cell exceeded {self.cell_timeout:g} s (stopped by its worker)",
                                     store.root)
                    elif record is None:
                        error_record(cell, _death_message(proc.exitcode), store.root)
                    yield cell, self._annotate(store, key, store.cell(key) or {})
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


def gpu_list(value: Any) -> list[str]:
    """``"0,1"``, ``(0, 1)`` or ``0`` → ``["0", "1"]`` / ``["0"]``; None → no pinning."""
    if value is None or value == "":
        return []
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, (list, tuple)) else [value]
    out = [str(v).strip() for v in items if str(v).strip()]
    if len(set(out)) != len(out):
        raise ValueError(f"--gpus {value!r} names a GPU twice")
    return out


@contextmanager
def _environment(changes: Mapping[str, str] | None) -> Iterator[None]:
    if not changes:
        yield
        return
    saved = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


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
