"""Executors run cells: one small contract (:mod:`harness.executors.base`), several backends.

``local`` runs cells in this process; ``process`` runs each cell in its own spawn-started
process, at most ``jobs`` at a time (a cell that runs out of memory or past its time limit is
killed without taking the run down); ``ray`` runs each cell as a Ray task on a cluster;
``slurm`` submits the cells as one SLURM job array through submitit.  Every one of them is
registered through the ``bench_register_executors`` hook below, exactly as a third-party
backend registers its own.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.executors.base import Executor, error_record
from harness.executors.local import LocalExecutor
from harness.executors.process import ProcessExecutor
from harness.executors.ray import RayExecutor
from harness.executors.slurm import SlurmExecutor
from harness.hookspecs import hookimpl
from harness.plugins import Registry

BUILTIN: tuple[type[Executor], ...] = (LocalExecutor, ProcessExecutor, RayExecutor, SlurmExecutor)


@hookimpl
def bench_register_executors(register: Callable[[type[Executor]], None]) -> None:
    for cls in BUILTIN:
        register(cls)


def get_executor(name: str, registry: Registry) -> type[Executor]:
    """The executor class registered as ``name`` (unknown names fail with the installed ones)."""
    return registry.get("executor", name).obj  # type: ignore[no-any-return]


__all__ = ["BUILTIN", "Executor", "LocalExecutor", "ProcessExecutor", "RayExecutor", "SlurmExecutor",
           "error_record", "get_executor"]
