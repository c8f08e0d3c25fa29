"""Run each cell as a Ray task, on this machine or on a cluster (``segbench[ray]``).

Who writes: the **driver**.  A task runs :func:`~harness.runner.execute_cell` into a private
temporary store on its worker node and returns the cell's files (record, image rows, fitted
model) to the driver, which stores them through ``Store.write_cell`` (assemble, then one
rename).  So the store needs to exist only where ``bench run`` runs, on any POSIX filesystem;
worker nodes need the same segbench and plugins installed and a writable temporary directory,
nothing shared.  Because only the driver writes, and only the first result of a task, a task
that Ray retries (its worker process or node died) can never produce a second record.

Each task asks for the method's resources: ``num_cpus`` (a method class may declare it;
default 1) and one GPU when the method uses one and the run's device is ``cuda``; the run
overrides both with ``num_cpus`` / ``num_gpus``.  A cell's thread pools are limited to its
``num_cpus`` (at least 1), and its record says so (``threads``).  A task first reports that it has loaded its
plugins, which starts the cell's time limit; past it the driver cancels the task (its worker
process is killed) and records a timeout.  Ctrl-C cancels every task.  Dead workers are
retried ``max_retries`` times (default 3) by Ray; an application error is a record, not a retry.
A queued cell whose resources no live node offers (say a GPU on a CPU-only cluster, or after
the only worker node died) becomes an error record naming the nodes, instead of waiting forever.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from harness.executors.base import (
    Executor,
    cell_payload,
    error_record,
    limit_threads,
    put_stage,
    stage_payload,
    with_threads,
    with_timing,
)
from harness.runner import CellSpec, execute_cell, spec_from_dict, spec_to_dict
from harness.store import Store
from harness.types import PluginError

INSTALL_HINT = "the ray executor needs Ray: pip install 'segbench[ray]'"
DEFAULT_RETRIES = 3


def _cell_task(spec: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    """The task body (a Ray streaming generator): ('started', node), then ('done', payload)."""
    import ray

    from harness.plugins import build_registry

    cell = spec_from_dict(spec)
    registry = build_registry(warn=False)
    yield ("started", ray.get_runtime_context().get_node_id(), os.getpid())
    with tempfile.TemporaryDirectory(prefix="segbench-cell-") as tmp:
        def started() -> None:
            limit_threads(cell.provenance.get("threads"))  # the task's num_cpus

        execute_cell(cell, tmp, registry, on_start=started)
        yield ("done", (*cell_payload(Store(tmp), cell.key), stage_payload(Store(tmp), cell.predict_key)))


class RayExecutor(Executor):
    name = "ray"
    description = "each cell a Ray task on a local or remote Ray cluster (segbench[ray])"
    options: ClassVar[Mapping[str, str]] = {
        "address": "cluster to join: auto or HOST:PORT (default: start Ray on this machine)",
        "num_cpus": "CPUs per cell (default: the method's num_cpus, else 1)",
        "num_gpus": "GPUs per cell (default: 1 for a GPU method on a cuda device, else 0)",
        "max_retries": f"times a cell whose worker died is run again (default {DEFAULT_RETRIES})",
    }
    poll_s = 0.2
    feasibility_s = 5.0  # how often queued cells are checked against the nodes that are alive

    def __init__(self, store_root: str | Path, **kwargs: Any) -> None:
        super().__init__(store_root, **kwargs)
        if importlib.util.find_spec("ray") is None:
            raise PluginError(INSTALL_HINT)
        self._tasks: dict[Any, tuple[CellSpec, float | None]] = {}
        #: cell key → (id of the Ray node, worker process id) of the attempt that started first
        self.placements: dict[str, tuple[str, int]] = {}

    def resources(self, cell: CellSpec) -> dict[str, float]:
        cls = None
        if self.registry is not None and cell.method in self.registry.methods:
            cls = self.registry.get("method", cell.method).obj
        gpu = bool(cls is not None and cls.uses_gpu and cell.device.startswith("cuda"))
        return {
            "num_cpus": float(self.settings.get("num_cpus", getattr(cls, "num_cpus", 1))),
            "num_gpus": float(self.settings.get("num_gpus", 1 if gpu else 0)),
        }

    def _connect(self) -> bool:
        """Join or start Ray unless this process is already connected; True when we did."""
        import ray

        if ray.is_initialized():
            return False
        address = self.settings.get("address")
        if address:
            ray.init(address=str(address), log_to_driver=False, logging_level=logging.WARNING)
        else:
            # "local": a new Ray on this machine, never one that a 'ray start' left behind
            ray.init(address="local", num_cpus=self.jobs if self.jobs > 1 else None, include_dashboard=False,
                     log_to_driver=False, logging_level=logging.WARNING)
        return True

    def as_completed(self) -> Iterator[tuple[CellSpec, Mapping[str, Any]]]:
        import ray
        from ray.exceptions import RayError

        connected_here = self._connect()
        store = Store(self.store_root)
        remote = ray.remote(num_returns="streaming")(_cell_task)
        retries = int(self.settings.get("max_retries", DEFAULT_RETRIES))
        next_check = time.monotonic() + self.feasibility_s
        total = ray.cluster_resources()
        queued = len(self._pending)
        try:
            while self._pending and not self._cancelled:
                cell = self._pending.pop(0)
                need = self.resources(cell)
                # the task's CPUs are its threads (at least one)
                cell = with_threads(with_timing(cell, min(queued, slots(need, total))), max(1, int(need["num_cpus"])))
                task = remote.options(name=f"bench-cell-{cell.key}", max_retries=retries, retry_exceptions=False,
                                      **need).remote(spec_to_dict(cell))
                self._tasks[task] = (cell, None)
            while self._tasks and not self._cancelled:
                ready, _ = ray.wait(list(self._tasks), num_returns=1, timeout=self.poll_s)
                for task in ready:
                    cell, began = self._tasks[task]
                    item: Any
                    try:
                        item = ray.get(next(task))  # type: ignore[arg-type]
                    except StopIteration:
                        item = ("lost",)
                    except RayError as exc:
                        del self._tasks[task]
                        first = (str(exc).strip().splitlines() or [""])[0]
                        yield cell, error_record(cell, f"ray task failed ({type(exc).__name__}): {first}", store.root)
                        continue
                    if item[0] == "started":
                        self._tasks[task] = (cell, time.monotonic())
                        self.placements[cell.key] = (item[1], item[2])
                        continue
                    del self._tasks[task]
                    if item[0] != "done":
                        yield cell, error_record(cell, "ray task ended without a result", store.root)
                        continue
                    record, images, files, stage = item[1]
                    put_stage(store, cell.predict_key, stage)  # the predictions first, then the cell
                    store.write_cell(cell.key, record, images, files)
                    yield cell, record
                if time.monotonic() >= next_check:  # a task no node can ever run would wait forever
                    next_check = time.monotonic() + self.feasibility_s
                    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
                    for task, (cell, began) in list(self._tasks.items()):
                        need = self.resources(cell)
                        if began is None and not any(_fits(need, node) for node in nodes):
                            ray.cancel(task, force=True)
                            del self._tasks[task]
                            yield cell, error_record(cell, f"no node of the Ray cluster offers {_describe(need)} "
                                                     f"(nodes: {'; '.join(_describe(n) for n in nodes) or 'none alive'})",
                                                     store.root)
                if self.cell_timeout:
                    now = time.monotonic()
                    for task, (cell, began) in list(self._tasks.items()):
                        if began is not None and now - began > self.cell_timeout:
                            ray.cancel(task, force=True)
                            del self._tasks[task]
                            yield cell, error_record(cell, f"timeout: cell exceeded {self.cell_timeout:g} s",
                                                     store.root)
        finally:
            self._cancel_tasks()
            if connected_here:
                ray.shutdown()

    def cancel(self) -> None:
        super().cancel()
        self._cancel_tasks()

    def _cancel_tasks(self) -> None:
        if not self._tasks:
            return
        import ray

        for task in list(self._tasks):
            with contextlib.suppress(Exception):  # a task that already ended cannot be cancelled
                ray.cancel(task, force=True)
        self._tasks.clear()


def slots(need: Mapping[str, float], total: Mapping[str, float]) -> int:
    """How many cells needing ``need`` the cluster's ``total`` resources hold at once (at least 1)."""
    counts = [total.get(kind, 0) // amount for key, kind in (("num_cpus", "CPU"), ("num_gpus", "GPU"))
              if (amount := need.get(key, 0)) > 0]
    return max(1, int(min(counts))) if counts else max(1, int(total.get("CPU", 1)))


def _fits(need: Mapping[str, float], node: Mapping[str, float]) -> bool:
    return need["num_cpus"] <= node.get("CPU", 0) and need["num_gpus"] <= node.get("GPU", 0)


def _describe(resources: Mapping[str, float]) -> str:
    cpus = resources.get("num_cpus", resources.get("CPU", 0))
    gpus = resources.get("num_gpus", resources.get("GPU", 0))
    return f"{cpus:g} CPU, {gpus:g} GPU"
