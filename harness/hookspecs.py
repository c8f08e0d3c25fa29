"""Hook specifications: the whole plugin surface of segbench.

Plugins are modules or objects with functions named like these hooks, marked with
``harness.hookimpl``, and published under the entry-point group ``segbench``.  Registration
hooks hand records to a host-owned ``register`` callback; plugins never mutate globals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from harness.executors.base import Executor
    from harness.records import CellRecord
    from harness.types import Dataset, Method, MetricSpec

PROJECT = "segbench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def bench_register_datasets(register: Callable[[type[Dataset]], None]) -> None:
    """Register dataset plugin classes.  Called once when the registry is built.

    Call ``register`` with each :class:`harness.types.Dataset` subclass; return nothing::

        @hookimpl
        def bench_register_datasets(register):
            register(MyDataset)
    """


@hookspec
def bench_register_methods(register: Callable[[type[Method]], None]) -> None:
    """Register method plugin classes.  Called once when the registry is built.

    Call ``register`` with each :class:`harness.types.Method` subclass; return nothing::

        @hookimpl
        def bench_register_methods(register):
            register(MyMethod)
    """


@hookspec
def bench_register_metrics(register: Callable[[MetricSpec], None]) -> None:
    """Register metric records.  Called once when the registry is built.

    Call ``register`` with each :class:`harness.types.MetricSpec`; return nothing::

        @hookimpl
        def bench_register_metrics(register):
            register(MetricSpec(name="my_dice", higher_is_better=True, statistics=my_stats))
    """


@hookspec
def bench_register_executors(register: Callable[[type[Executor]], None]) -> None:
    """Register executor classes (where cells run).  Called once when the registry is built.

    Call ``register`` with each :class:`harness.executors.Executor` subclass; its ``name`` is
    what ``bench run --executor`` accepts::

        @hookimpl
        def bench_register_executors(register):
            register(MyClusterExecutor)
    """


@hookspec
def bench_register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``bench`` command group.  Called when the CLI starts.

    Return nothing::

        @hookimpl
        def bench_register_commands(cli):
            cli.add_command(my_command)
    """


@hookspec
def bench_cell_started(cell: Mapping[str, Any]) -> None:
    """Called in the driving process when a cell is submitted to an executor.

    ``cell`` holds ``key``, ``dataset``, ``method``, ``params`` and ``seed``::

        @hookimpl
        def bench_cell_started(cell):
            print("starting", cell["method"], "on", cell["dataset"])
    """


@hookspec
def bench_cell_finished(cell: Mapping[str, Any], record: CellRecord) -> None:
    """Called in the driving process when a cell's record is stored (done, error or skipped).

    ``record`` is the stored :class:`harness.records.CellRecord`: typed fields (``status``, a
    :class:`~harness.records.Status`; ``error``, ``key``, ``predict_key``…) and, as a
    read-only mapping, everything else it holds (timings, memory, split values)::

        @hookimpl
        def bench_cell_finished(cell, record):
            if record.status is Status.ERROR:
                notify(record.key, record.error, record.get("traceback"))
    """


@hookspec
def bench_run_finished(run: Mapping[str, Any]) -> None:
    """Called once when ``bench run`` has processed every cell.

    ``run`` is the run's provenance (``run_id``, ``cells``, ``counts`` by status)::

        @hookimpl
        def bench_run_finished(run):
            print(run["run_id"], run["counts"])
    """


@hookspec
def bench_profile_columns(measurement: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Columns of one ``bench profile`` row, computed from one measured configuration.

    ``measurement`` holds ``method``, ``input``, ``height``, ``width``, ``mode`` (inference or
    train), ``device``, ``batch_size`` (run), ``requested_batch_size``, ``oom_batch_sizes``,
    ``seconds`` (one timing per timed batch), ``peak_rss_mb``, ``gpu_allocated_mb``,
    ``gpu_reserved_mb``, ``threads``, ``params`` and ``flops_per_image``.  Return a mapping of
    column name to value; the built-in columns come through this same hook::

        @hookimpl
        def bench_profile_columns(measurement):
            return {"energy_j": read_energy_meter()}
    """
