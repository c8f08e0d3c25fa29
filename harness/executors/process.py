"""Run cells in a pool of ``jobs`` spawn-started worker processes, reused from cell to cell.

Each worker loads the plugin registry once (from the installed entry points; the same
environment variables apply, so plugins registered only in memory need the ``local``
executor) and then takes cells from the driver one at a time over a pipe.  Starting a process
and loading the plugins costs about a second on a small machine, so a process per cell made
``--jobs 2`` slower than ``--jobs 1`` on small cells; a reused worker pays it once.  Measured
on the 2-core development machine under load (docs/DESIGN.md, "Executors"): a sweep of 40
small cells ran at 152 cells/min with ``--jobs 1`` (208 for ``local``, interleaved), against 43
with a process per cell.

What a process of its own still buys each cell:

- **a hard time limit**: a cell that reports it started (plugins loaded, dataset and method
  built) and runs past ``cell_timeout`` has its worker killed, the driver writes the error
  record, and the next cell gets a freshly started worker;
- **no lost run**: a worker that dies with its cell (killed by the kernel for memory, SIGKILL,
  a crash in native code) becomes an error record naming the death; the pool goes on;
- **workers die with the driver**: killed (SIGKILL, SIGTERM) or crashed, it leaves no worker
  behind (:class:`WorkerGuard`), and a worker also stops its own cell a little after
  ``cell_timeout`` when the driver cannot;
- **memory**: after each cell a worker collects garbage, empties torch's CUDA cache and
  returns freed heap to the system; a worker whose resident memory is still above
  ``max_worker_rss_mb`` (default 2048 MiB) after a cell, or that has run
  ``max_cells_per_worker`` cells (default: no limit), is replaced by a fresh one.  Memory a
  cell leaks is therefore carried into the next cells only below that bound; a cell's
  ``peak_rss_mb`` includes what its worker held when it started, ``rss_increase_mb`` does not.

Threads: every worker's BLAS, OpenMP and torch pools are limited to ``max(1, CPUs // cells
at once)`` threads, or to ``OMP_NUM_THREADS`` when the user set it (the variables are set
before the spawn, and the limits again once each cell's method is built); the record says how
many (``threads``).

GPUs: with ``gpus`` (``--gpus 0,1``) each GPU cell runs in a worker that sees one GPU through
``CUDA_VISIBLE_DEVICES`` (the least busy, ties in turn; CPU cells run in workers that see
none), and the stored record says which (``cuda_visible_devices``) and whether another cell used
that GPU while it ran (``gpu_shared``): with no more jobs than GPUs that never happens.  The
variable is fixed when a worker starts, so workers are kept per GPU: a cell goes to an idle
worker started for its GPU, else to a new one, and when the pool is full an idle worker
started for another GPU is replaced.  With as many jobs as GPUs that settles on one worker
per GPU.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import multiprocessing as mp
import multiprocessing.connection as mp_connection
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

import psutil

from harness.executors.base import (
    Executor,
    cell_payload,
    cell_threads,
    error_record,
    limit_threads,
    thread_environment,
    with_threads,
    with_timing,
)
from harness.plugins import Registry, build_registry
from harness.runner import CellSpec, execute_cell, spec_from_dict, spec_to_dict
from harness.store import Store
from harness.types import PluginError

STARTUP_LIMIT_S = 600  # a worker that cannot even load its plugins in this time is stuck
#: exit status of a worker that stopped its own cell for the time limit (as timeout(1) does)
TIMEOUT_EXIT = 124
#: the worker's own limit trails the driver's by this much, so the driver normally stops the
#: cell (and writes its record); the worker's matters when the driver cannot (stopped, stuck)
WORKER_GRACE_S = 2.0
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
#: a worker whose resident memory after a cell is above this is replaced by a fresh one
DEFAULT_MAX_WORKER_RSS_MB = 2048


def _worker(conn: Any, store_root: str, driver_pid: int, cell_timeout: float | None) -> None:
    """A pool worker: load the plugins once, then run the cells the driver sends, one at a time.

    Messages to the driver: ``("started", key)`` when a cell's work begins (its time limit
    starts), ``("done", key, rss_mb)`` when its record is stored.  ``None`` from the driver,
    or the driver's end of the pipe closing, ends the worker."""
    guard = WorkerGuard(driver_pid)
    guard.start()
    try:
        registry: Registry | None = build_registry(warn=False)
    except Exception:  # noqa: BLE001 - each cell builds it again and records why it failed
        registry = None
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        spec = spec_from_dict(message)

        def on_start(key: str = spec.key, threads: int | None = spec.provenance.get("threads")) -> None:
            # the time limit counts the cell's work, not the plugin loading or the dataset's set-up
            if cell_timeout:
                guard.limit(cell_timeout + WORKER_GRACE_S)
            limit_threads(threads)  # after the method is built: the libraries it imported count too
            conn.send(("started", key))

        execute_cell(spec, store_root, registry, on_start=on_start)
        guard.limit(None)
        conn.send(("done", spec.key, _release_memory()))


def _release_memory() -> float:
    """Give what the last cell freed back to the system; the worker's resident memory (MiB)."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()  # cached blocks would stay reserved on the GPU for this worker
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).malloc_trim(0)  # glibc keeps freed heap pages otherwise
    return float(psutil.Process().memory_info().rss) / 2**20

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

    def limit(self, seconds: float | None) -> None:
        """End the worker ``seconds`` from now; None lifts the limit (the cell ended in time)."""
        self.deadline = None if seconds is None else time.monotonic() + seconds
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


@dataclasses.dataclass(eq=False)
class _Worker:
    """The driver's handle on one pool worker."""

    proc: Any
    conn: Any
    gpu: str | None  # CUDA_VISIBLE_DEVICES it was started with; None: left as the driver's
    cells: int = 0  # cells handed to it so far
    cell: CellSpec | None = None  # the cell it runs now
    sent: float = 0.0  # wall-clock time the cell was handed over
    began: float | None = None  # monotonic time the cell reported that its work began

    def receive(self) -> float | None:
        """Read the worker's messages; the resident memory it reported when its cell is done."""
        with contextlib.suppress(EOFError, OSError):
            while self.conn.poll():
                message = self.conn.recv()
                if message[0] == "started":
                    self.began = time.monotonic()
                elif message[0] == "done":
                    return float(message[2])
        return None

    def stop(self) -> None:
        """Ask an idle worker to exit (it finishes nothing: it has no cell)."""
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)


class ProcessExecutor(Executor):
    name = "process"
    description = "--jobs reused spawned worker processes, one cell at a time each (hard time limit)"
    options: ClassVar[Mapping[str, str]] = {
        "gpus": "GPU ids, e.g. 0,1: each GPU cell's worker sees one (CUDA_VISIBLE_DEVICES), least busy first",
        "max_cells_per_worker": "replace a worker after this many cells (default 0: no limit)",
        "max_worker_rss_mb": "replace a worker whose resident memory after a cell exceeds this many MiB "
                             f"(default {DEFAULT_MAX_WORKER_RSS_MB}; 0: never)",
    }
    poll_s = 0.05

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gpus = gpu_list(self.settings.get("gpus"))
        self.max_cells = _whole(self.settings.get("max_cells_per_worker", 0), "max_cells_per_worker")
        self.max_rss_mb = _whole(self.settings.get("max_worker_rss_mb", DEFAULT_MAX_WORKER_RSS_MB),
                                 "max_worker_rss_mb")
        self._gpu_of: dict[str, str] = {}
        self._shared: set[str] = set()
        self._turn = 0
        #: cell key → the worker running it; idle workers; workers asked to exit
        self._running: dict[str, _Worker] = {}
        self._idle: list[_Worker] = []
        self._leaving: list[_Worker] = []
        #: process ids of every worker started, in order (a replaced worker is a new entry)
        self.started_pids: list[int] = []

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

    def _spawn(self, ctx: Any, gpu: str | None, threads: int) -> _Worker:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(child, str(self.store_root), os.getpid(), self.cell_timeout),
                           name=f"bench-worker-{len(self.started_pids)}", daemon=True)
        env = thread_environment(threads)
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        with _environment(env):
            proc.start()  # a spawned child inherits the environment as it is now
        child.close()  # the worker holds the only other end: its death reads as end of file
        self.started_pids.append(proc.pid)
        return _Worker(proc, parent, gpu)

    def _worker_for(self, ctx: Any, gpu: str | None, threads: int) -> _Worker:
        """An idle worker started with ``gpu`` visible, else a new one (replacing an idle worker
        started for another GPU when the pool is full)."""
        for worker in [w for w in self._idle if not w.proc.is_alive()]:  # died while idle (killed)
            self._idle.remove(worker)
            worker.proc.join()
        for worker in self._idle:
            if worker.gpu == gpu:
                self._idle.remove(worker)
                return worker
        if self._idle and len(self._idle) + len(self._running) >= self.jobs:
            self._retire(self._idle.pop(0))
        return self._spawn(ctx, gpu, threads)

    def _retire(self, worker: _Worker) -> None:
        worker.stop()
        self._leaving.append(worker)

    def as_completed(self) -> Iterator[tuple[CellSpec, Mapping[str, Any]]]:
        ctx = mp.get_context("spawn")
        store = Store(self.store_root)
        if self.gpus and self.jobs > len(self.gpus) and any(c.device.startswith("cuda") for c in self._pending):
            warnings.warn(f"--jobs {self.jobs} over {len(self.gpus)} GPU(s): GPU cells will share a GPU; their "
                          "records say gpu_shared=true and their timings are not comparable", stacklevel=2)
        # timings of cells that run side by side share the CPUs: the records say so, and each cell
        # gets its share of the CPUs as threads
        workers = min(self.jobs, len(self._pending))
        threads = cell_threads(workers)
        self._pending = [with_threads(with_timing(c, workers), threads) for c in self._pending]
        running = self._running
        try:
            while (self._pending or running) and not self._cancelled:
                while self._pending and len(running) < self.jobs:
                    queued = self._pending.pop(0)
                    gpu = self._place(queued, running)
                    worker = self._worker_for(ctx, None if not self.gpus else (gpu or ""), threads)
                    worker.cell, worker.sent, worker.began = queued, time.time(), None
                    worker.cells += 1
                    running[queued.key] = worker
                    with contextlib.suppress(OSError):  # a worker that died meanwhile is seen below
                        worker.conn.send(spec_to_dict(queued))
                waiting = [w.conn for w in running.values()] + [w.proc.sentinel for w in running.values()]
                mp_connection.wait(waiting, timeout=self.poll_s)
                for key, worker in list(running.items()):
                    cell = worker.cell
                    assert cell is not None
                    rss = worker.receive()
                    if rss is not None:  # the cell stored its record
                        del running[key]
                        worker.cell = None
                        if (self.max_cells and worker.cells >= self.max_cells) or (self.max_rss_mb and rss > self.max_rss_mb):
                            self._retire(worker)  # a fresh one takes the next cell: no memory carried over
                        else:
                            self._idle.append(worker)
                        yield cell, self._annotate(store, key, store.cell(key) or {})
                        continue
                    if worker.proc.is_alive():
                        if worker.began is None and time.time() - worker.sent > STARTUP_LIMIT_S:
                            message = f"worker did not start the cell within {STARTUP_LIMIT_S} s"
                        elif self.cell_timeout and worker.began is not None and \
                                time.monotonic() - worker.began > self.cell_timeout:
                            message = f"timeout: cell exceeded {self.cell_timeout:g} s"
                        else:
                            continue
                        worker.proc.kill()  # the next cell gets a fresh worker
                        worker.proc.join()
                        del running[key]
                        error_record(cell, message, store.root)
                        yield cell, self._annotate(store, key, store.cell(key) or {})
                        continue
                    worker.proc.join()  # died with its cell: killed (memory?), crashed or timed out itself
                    del running[key]
                    if worker.receive() is None and not _written_since(store, key, worker.sent):
                        if worker.proc.exitcode == TIMEOUT_EXIT and self.cell_timeout:
                            error_record(cell, f"timeout: cell exceeded {self.cell_timeout:g} s (stopped by its "
                                         "worker)", store.root)
                        else:
                            error_record(cell, _death_message(worker.proc.exitcode), store.root)
                    yield cell, self._annotate(store, key, store.cell(key) or {})
                self._reap()
        finally:
            self._shutdown()

    def _reap(self) -> None:
        for worker in [w for w in self._leaving if not w.proc.is_alive()]:
            worker.proc.join()
            worker.conn.close()
            self._leaving.remove(worker)

    def _shutdown(self, wait_s: float = 2.0) -> None:
        """Kill workers that still run a cell; ask idle ones to exit; kill what has not within ``wait_s``."""
        busy = list(self._running.values())
        for worker in busy:
            worker.proc.kill()
        for worker in self._idle:
            worker.stop()
        everyone = busy + self._idle + self._leaving
        deadline = time.monotonic() + wait_s
        for worker in everyone:
            worker.proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if worker.proc.is_alive():
                worker.proc.kill()
                worker.proc.join(timeout=5)
            worker.conn.close()
        self._running.clear()
        self._idle.clear()
        self._leaving.clear()

    def cancel(self) -> None:
        super().cancel()
        self._shutdown(wait_s=0.0)

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


def _whole(value: Any, name: str) -> int:
    """An option that must be a whole number of at least 0."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise PluginError(f"executor 'process': {name} must be a whole number of at least 0, not {value!r} "
                      f"(e.g. -X {name}=20)")


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
