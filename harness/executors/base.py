"""The executor contract: where and how cells run.

An executor is a class registered through the ``bench_register_executors`` hook.  The driver
(``run_benchmark``) makes one per run and speaks to it in three calls:

- ``submit(cell)``: queue a :class:`~harness.runner.CellSpec` (plain, picklable data);
- ``as_completed()``: start what was submitted and yield ``(cell, record)`` as each cell
  ends, in completion order, exactly once per submitted cell; by the time a pair is yielded
  the record is stored (``Store(store_root).cell(cell.key)`` returns it);
- ``cancel()``: stop everything still queued or running (idempotent; also called when the
  driver is interrupted).  Cancelled cells leave no record, so the next run computes them.

A cell that fails, is killed or runs past ``cell_timeout`` still yields a record (status
``error``, written with :func:`error_record` when the cell could not write its own).

Each record says how its timings were taken: ``timing`` is ``isolated`` when the executor ran
one cell at a time, ``concurrent`` when other cells could run beside it (``--jobs`` above 1,
Ray, SLURM arrays), with ``concurrent_workers``, the number of cells that could run at once.
Executors mark a cell with :func:`with_timing` before running it; leaderboards show the mark
beside their timing columns, so isolated and concurrent timings are never mixed silently.
Each record also says how many threads its cell ran with (``threads``): every BLAS/OpenMP
pool and torch's intra-op pool are limited to that many while the cell runs
(:func:`limit_threads`).  The executor decides the number (:func:`cell_threads`: the user's
``OMP_NUM_THREADS``, else the CPUs shared out over the cells that run at once; Ray and SLURM:
the CPUs the cell's task asked for) and marks the cell with :func:`with_threads`.
Executor-specific settings arrive as ``options``, a mapping whose keys the class declares in
``options`` (name → help); unknown keys are an error naming the executor.
"""

from __future__ import annotations

import abc
import dataclasses
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from harness.plugins import Registry
from harness.runner import CellSpec, _now
from harness.store import Store
from harness.types import PluginError


class Executor(abc.ABC):
    """Submit cells, then iterate their records as they complete; ``cancel`` stops the rest."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    #: option name → one-line help; ``bench run`` passes ``--executor-option NAME=VALUE``
    #: (and the dedicated flags of the built-in backends) through as ``options``.
    options: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        store_root: str | Path,
        *,
        jobs: int = 1,
        cell_timeout: float | None = None,
        registry: Registry | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.store_root = Path(store_root)
        self.jobs = max(1, int(jobs))
        self.cell_timeout = cell_timeout
        self.registry = registry
        self.settings: dict[str, Any] = dict(options or {})
        unknown = sorted(set(self.settings) - set(self.options))
        if unknown:
            raise PluginError(
                f"executor {self.name!r} has no option {', '.join(map(repr, unknown))}; "
                f"its options: {', '.join(sorted(self.options)) or '(none)'}"
            )
        cell_threads(1)  # a malformed OMP_NUM_THREADS fails here, before anything is planned or written
        self._pending: list[CellSpec] = []
        self._cancelled = False

    def submit(self, cell: CellSpec) -> None:
        self._pending.append(cell)

    @abc.abstractmethod
    def as_completed(self) -> Iterator[tuple[CellSpec, Mapping[str, Any]]]:
        """Run what was submitted; yield (cell, stored record) as each one finishes."""

    def cancel(self) -> None:
        """Drop queued cells and stop running ones (subclasses stop their workers too)."""
        self._cancelled = True
        self._pending.clear()


def with_timing(cell: CellSpec, workers: int) -> CellSpec:
    """``cell`` with the timing mode its record will state: ``isolated`` when ``workers`` (the
    cells that may run at once beside and including it) is 1, else ``concurrent``."""
    workers = max(1, int(workers))
    mark = {"timing": "concurrent" if workers > 1 else "isolated", "concurrent_workers": workers}
    return dataclasses.replace(cell, provenance={**cell.provenance, **mark})


#: the variables that size the thread pools of OpenMP and the BLAS libraries at their start
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def cell_threads(workers: int) -> int:
    """Threads per cell when ``workers`` cells run at once: the user's ``OMP_NUM_THREADS`` when
    set, else ``max(1, usable CPUs // workers)``."""
    given = os.environ.get("OMP_NUM_THREADS", "").strip()
    if given:
        first = given.split(",")[0].strip()  # OpenMP allows a list, one value per nesting level
        if not first.isdigit() or int(first) < 1:
            raise ValueError(f"OMP_NUM_THREADS={given!r} is not a positive whole number: unset it, or set e.g. "
                             "OMP_NUM_THREADS=2 (threads per cell)")
        return int(first)
    return max(1, usable_cpus() // max(1, int(workers)))


def thread_environment(threads: int) -> dict[str, str]:
    """The thread variables a spawned worker needs so that libraries it loads later start with
    ``threads`` threads; variables the user set are left as they are."""
    return {name: str(threads) for name in THREAD_VARIABLES if not os.environ.get(name)}


def with_threads(cell: CellSpec, threads: int) -> CellSpec:
    """``cell`` marked with the thread count it will run with (``threads`` in its record)."""
    return dataclasses.replace(cell, provenance={**cell.provenance, "threads": max(1, int(threads))})


def limit_threads(threads: int | None) -> Callable[[], None]:
    """Limit every loaded BLAS/OpenMP pool (threadpoolctl) and torch's intra-op pool, when torch
    is imported, to ``threads``; returns a function that restores the previous limits.  Call it
    once the cell's method is built (``on_start``), so the libraries the method imported are
    limited too."""
    if not threads:
        return lambda: None
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None  # read before OpenMP is limited
    limiter = threadpool_limits(limits=int(threads))
    if torch is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(int(threads))

    def restore() -> None:  # in reverse: torch's count, then the pools threadpoolctl found
        if torch is not None and before is not None and torch.get_num_threads() != before:
            torch.set_num_threads(before)
        limiter.restore_original_limits()

    return restore


def error_record(cell: CellSpec, message: str, store_root: str | Path) -> dict[str, Any]:
    """Store an error record written on a cell's behalf (its worker died or was killed)."""
    record = {
        **cell.describe(),
        "dataset_params": dict(cell.dataset_params),
        "budget": cell.budget,
        "device": cell.device,
        "metrics": list(cell.metrics),
        "eval_splits": list(cell.eval_splits),
        "status": "error",
        "error": message,
        "finished": _now(),
    }
    Store(store_root).write_cell(cell.key, record, [])
    return record


def cell_payload(store: Store, key: str) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, bytes]]:
    """A stored cell as (record, image rows, other files) for ``Store.write_cell`` elsewhere."""
    typed = store.cell(key)
    if typed is None:
        raise RuntimeError(f"cell {key} wrote no record")
    record = typed.to_json()
    folder = store.cell_dir(key)
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir())
             if p.is_file() and p.name not in ("cell.json", "images.jsonl")}
    return record, store.images(key), files


def stage_payload(store: Store, pkey: str) -> tuple[dict[str, Any], dict[str, bytes]] | None:
    """A stored predict stage as (record, files) for :func:`put_stage` in another store."""
    record = store.stage(pkey) if pkey else None
    if record is None:
        return None
    folder = store.stage_dir(pkey)
    return record, {name: (folder / name).read_bytes() for name in record["files"]}


def put_stage(store: Store, pkey: str, payload: tuple[Mapping[str, Any], Mapping[str, bytes]] | None) -> None:
    """Store a predict stage carried from another store (checksums recomputed on commit)."""
    if payload is None or store.stage(pkey) is not None:
        return
    record, files = payload
    tmp = store.new_stage(pkey)
    for name, data in files.items():
        (tmp / Path(name).name).write_bytes(data)
    store.commit_stage(pkey, tmp, {k: v for k, v in record.items() if k not in ("files", "key", "schema")})
