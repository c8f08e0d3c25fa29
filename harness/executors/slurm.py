"""Run the cells as one SLURM job array through submitit (``segbench[slurm]``).

Who writes: the **array task**.  Each task runs :func:`~harness.runner.execute_cell` with the
run's store root, so the cell is stored through ``Store.write_cell`` (assembled under a
temporary name, then one rename) by the node that computed it.  The store must therefore be on
a filesystem every node mounts at the same path, with atomic rename within a directory (NFS,
Lustre, GPFS, BeeGFS all qualify) -- submitit needs such a folder anyway; its pickles and the
tasks' logs live in the store under ``slurm/<job id>/``.

A task that SLURM preempts or stops at ``--slurm-time`` is requeued (submitit checkpointing:
the cell is resubmitted with the same arguments, up to ``max_num_timeout`` times); it starts
again from the beginning, and a method that saves checkpoints in its work directory
(``<store>/work/<key>``, shared too) can resume from them.  ``--cell-timeout`` is a soft limit
inside the task (the scheduler's ``--slurm-time`` is the hard one).  Ctrl-C cancels the array.
A cell's thread pools are limited to the task's ``cpus_per_task`` (default 1), and its record
says so (``threads``).  ``cluster=local`` runs the same code path with submitit's local executor instead of a
scheduler (each task a process on this machine).
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from harness.executors.base import Executor, error_record, limit_threads, with_threads, with_timing
from harness.runner import CellSpec, execute_cell, spec_from_dict, spec_to_dict
from harness.store import Store
from harness.types import PluginError

INSTALL_HINT = "the slurm executor needs submitit: pip install 'segbench[slurm]'"
STARTED = "segbench: cell started"
DEFAULT_PARALLELISM = 256


def _checkpointable() -> type:
    try:
        from submitit.helpers import Checkpointable
    except ImportError:  # the class below still imports; the executor refuses to start
        return object
    return Checkpointable  # type: ignore[no-any-return]


class SlurmCell(_checkpointable()):  # type: ignore[misc]
    """One array task: run and store a cell.  Requeued as is when preempted or timed out."""

    def __call__(self, spec: dict[str, Any], store_root: str, cell_timeout: float | None) -> Mapping[str, Any]:
        from harness.executors.local import time_limit

        cell = spec_from_dict(spec)

        def started() -> None:
            limit_threads(cell.provenance.get("threads"))
            print(STARTED, flush=True)  # in the task's log: the cell's work begins

        with time_limit(cell_timeout):
            return execute_cell(cell, store_root, on_start=started)


class SlurmExecutor(Executor):
    name = "slurm"
    description = "the cells as one SLURM job array through submitit (segbench[slurm])"
    options: ClassVar[Mapping[str, str]] = {
        "partition": "SLURM partition (required on a real cluster)",
        "gpus_per_task": "GPUs per array task",
        "time": "minutes per array task; past it the task is requeued",
        "array_parallelism": "array tasks running at once",
        "cpus_per_task": "CPUs per array task (default 1)",
        "mem_gb": "memory per array task in GB",
        "max_num_timeout": "requeues allowed per task after preemption or timeout (default 3)",
        "cluster": "slurm (default), or local to run the tasks on this machine without a scheduler",
    }
    poll_s = 1.0

    def __init__(self, store_root: str | Path, **kwargs: Any) -> None:
        super().__init__(store_root, **kwargs)
        if importlib.util.find_spec("submitit") is None:
            raise PluginError(INSTALL_HINT)
        cluster = self.settings.get("cluster", "slurm")
        if cluster not in ("slurm", "local", "debug"):
            raise PluginError(f"executor 'slurm': cluster must be slurm, local or debug, not {cluster!r}")
        if cluster == "slurm" and not self.settings.get("partition"):
            raise PluginError("executor 'slurm' needs a partition: pass --slurm-partition NAME")
        #: the submitted submitit jobs, one per cell, in submission order
        self.submitted: list[Any] = []

    def _submitit_executor(self) -> Any:
        import submitit

        s = self.settings
        cluster = s.get("cluster", "slurm")
        retries = int(s.get("max_num_timeout", 3))
        executor = submitit.AutoExecutor(folder=self.store_root / "slurm" / "%j", cluster=cluster,
                                         **{f"{cluster}_max_num_timeout": retries} if cluster != "debug" else {})
        params: dict[str, Any] = {"name": "segbench", "cpus_per_task": int(s.get("cpus_per_task", 1)),
                                  "slurm_array_parallelism": int(s.get("array_parallelism", DEFAULT_PARALLELISM))}
        if "time" in s:
            params["timeout_min"] = int(s["time"])
        if "mem_gb" in s:
            params["mem_gb"] = float(s["mem_gb"])
        if "partition" in s:
            params["slurm_partition"] = str(s["partition"])
        if "gpus_per_task" in s:
            params["slurm_gpus_per_task"] = int(s["gpus_per_task"])
            if cluster != "slurm":
                params["gpus_per_node"] = int(s["gpus_per_task"])
        executor.update_parameters(**params)
        return executor

    def as_completed(self) -> Iterator[tuple[CellSpec, Mapping[str, Any]]]:
        cells, self._pending = list(self._pending), []
        if not cells or self._cancelled:
            return
        # array tasks run side by side, up to the array's parallelism: the records say so
        workers = min(len(cells), int(self.settings.get("array_parallelism", DEFAULT_PARALLELISM)))
        # each task's CPUs are its cell's threads
        threads = max(1, int(self.settings.get("cpus_per_task", 1)))
        cells = [with_threads(with_timing(c, workers), threads) for c in cells]
        store = Store(self.store_root)
        submitted = time.time()
        self.submitted = self._submitit_executor().map_array(
            SlurmCell(), [spec_to_dict(c) for c in cells], [str(self.store_root)] * len(cells),
            [self.cell_timeout] * len(cells))
        waiting = dict(zip(range(len(cells)), self.submitted, strict=True))
        try:
            while waiting and not self._cancelled:
                for i, job in list(waiting.items()):
                    if not job.done():
                        continue
                    del waiting[i]
                    cell = cells[i]
                    try:
                        record = job.result()
                    except Exception as exc:  # noqa: BLE001 - the task failed outside the cell
                        written = store.cell(cell.key)
                        if written is not None and _stored_since(store, cell.key, submitted):
                            record = written
                        else:
                            first = (str(exc).strip().splitlines() or [""])[0]
                            record = error_record(cell, f"slurm task {job.job_id} failed ({type(exc).__name__}): "
                                                  f"{first}; log: {job.paths.stderr}", store.root)
                    yield cell, record
                if waiting:
                    time.sleep(self.poll_s)
        finally:
            for job in waiting.values():
                job.cancel(check=False)

    def cancel(self) -> None:
        super().cancel()
        for job in self.submitted:
            if not job.done():
                job.cancel(check=False)


def _stored_since(store: Store, key: str, wall: float) -> bool:
    path = store.cell_dir(key) / "cell.json"
    return path.is_file() and path.stat().st_mtime >= wall - 0.05
