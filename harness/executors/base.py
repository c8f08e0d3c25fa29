"""The executor interface."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.plugins import Registry
from harness.runner import CellSpec, _now
from harness.store import Store


class Executor(abc.ABC):
    """Submit cells, then iterate their records as they complete."""

    name = ""

    def __init__(
        self,
        store_root: str | Path,
        *,
        jobs: int = 1,
        cell_timeout: float | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.store_root = Path(store_root)
        self.jobs = max(1, int(jobs))
        self.cell_timeout = cell_timeout
        self.registry = registry
        self._pending: list[CellSpec] = []

    def submit(self, cell: CellSpec) -> None:
        self._pending.append(cell)

    @abc.abstractmethod
    def as_completed(self) -> Iterator[tuple[CellSpec, dict[str, Any]]]:
        """Run what was submitted; yield (cell, stored record) as each one finishes."""


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
