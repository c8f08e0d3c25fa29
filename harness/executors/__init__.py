"""Executors run cells: one small interface, several backends.

``local`` runs cells in this process; ``process`` runs each cell in its own spawn-started
process, at most ``jobs`` at a time (a cell that runs out of memory or past its time limit is
killed without taking the run down).  A Ray or SLURM (submitit) backend implements the same
two methods: ``submit`` a cell, then iterate ``as_completed`` for the records, which the cell
itself has already written to the store.
"""

from __future__ import annotations

from harness.executors.base import Executor, error_record
from harness.executors.local import LocalExecutor
from harness.executors.process import ProcessExecutor

EXECUTORS: dict[str, type[Executor]] = {"local": LocalExecutor, "process": ProcessExecutor}


def get_executor(name: str) -> type[Executor]:
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; choose from {', '.join(EXECUTORS)}")
    return EXECUTORS[name]


__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "ProcessExecutor", "error_record", "get_executor"]
