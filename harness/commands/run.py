"""``bench run``: the cross product datasets × methods × seeds."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.bench import DEFAULT_DATASETS, DEFAULT_METHODS, parse_specs, run_benchmark
from harness.cli import registry_from
from harness.commands.leaderboard import show
from harness.runner import CellSpec
from harness.store import Store
from harness.types import BUDGETS


@click.command("run")
@click.option("--datasets", default=",".join(DEFAULT_DATASETS), show_default=True,
              help="Comma-separated datasets, 'all', or NAME(key=value,…).")
@click.option("--methods", default=",".join(DEFAULT_METHODS), show_default=True,
              help="Comma-separated methods, 'all', or NAME(key=value,…), e.g. 'otsu(min_size=20)'.")
@click.option("--seeds", default="0", show_default=True, help="Comma-separated integer seeds.")
@click.option("--metrics", default=None, help="Comma-separated metrics (default: every applicable one).")
@click.option("--budget", type=click.Choice(list(BUDGETS)), default="quick", show_default=True,
              help="Training budget for methods that learn.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--executor", type=click.Choice(["local", "process"]), default=None,
              help="Where cells run (default: local, or process when --jobs > 1 or --cell-timeout is set).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True, help="Cells at once (process executor).")
@click.option("--cell-timeout", type=click.FloatRange(min=0, min_open=True), default=None, help="Seconds before a cell is stopped and recorded as an error.")
@click.option("--force", is_flag=True, help="Recompute cells that are already finished.")
@click.option("--store", "store_path", type=click.Path(path_type=Path), envvar="BENCH_RUNS", default="runs", show_default=True)
@click.option("--run-id", default=None, help="Name of this run (default: timestamp).")
@click.option("--quiet", is_flag=True, help="No progress bar or table.")
@click.option("--allow-errors", is_flag=True, help="Exit 0 even when cells errored (sweeps that tolerate failures).")
@click.pass_context
def run_cmd(ctx: click.Context, datasets: str, methods: str, seeds: str, metrics: str | None, budget: str, device: str,
            executor: str | None, jobs: int, cell_timeout: float | None, force: bool, store_path: Path,
            run_id: str | None, quiet: bool, allow_errors: bool) -> None:
    """Fit, predict, score and profile every cell; finished cells are reused."""
    registry = registry_from(ctx)
    ds = parse_specs(datasets, list(registry.datasets), "dataset")
    ms = parse_specs(methods, list(registry.methods), "method")
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"{seeds!r}: seeds are comma-separated integers", param_hint="--seeds") from None
    if not seed_list:
        raise click.BadParameter("give at least one seed, e.g. --seeds 0,1,2", param_hint="--seeds")
    chosen = [m.strip() for m in metrics.split(",")] if metrics else None
    executor = executor or ("process" if jobs > 1 or cell_timeout else "local")
    store = Store(store_path)
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=quiet, transient=False) as progress:
        task = progress.add_task("cells", total=None)
        counts: dict[str, int] = {}
        errored: list[str] = []

        def on_event(kind: str, cell: CellSpec, record: Mapping[str, Any] | None) -> None:
            if progress.tasks[task].total is None:
                progress.update(task, total=0)
            if kind == "submitted":
                progress.update(task, total=(progress.tasks[task].total or 0) + 1,
                                description=f"{cell.dataset} · {cell.label} · seed {cell.seed}")
                return
            status = (record or {}).get("status", "?") if kind == "finished" else "reused"
            counts[status] = counts.get(status, 0) + 1
            if kind == "reused":
                progress.update(task, total=(progress.tasks[task].total or 0) + 1)
            progress.advance(task)
            if status == "error":
                errored.append(f"{cell.dataset} · {cell.label} · seed {cell.seed}")
            if status == "error" and record is not None:
                console.print(f"[red]error[/] {cell.dataset} · {cell.label} · seed {cell.seed}: {record.get('error')}")
            progress.update(task, description="cells " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))

        result = run_benchmark(registry, ds, ms, seed_list, budget=budget, device=device, metrics=chosen,
                               executor=executor, jobs=jobs, cell_timeout=cell_timeout, force=force,
                               store=store, run_id=run_id, on_event=on_event)
    if not quiet:
        show(registry, store, store.run(result.run_id), chosen)
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(result.counts().items()))
    console.print(f"run {result.run_id} in {store.root}: {summary} ({result.reused} reused); "
                  f"'bench leaderboard --run {result.run_id}' writes the versioned leaderboard")
    if errored and not allow_errors:
        console.print(f"[red]error:[/] {len(errored)} cell(s) failed: {'; '.join(errored)}; "
                      f"each error is printed above and kept in its record under {store.root} "
                      "(pass --allow-errors to exit 0 anyway)",
                      soft_wrap=True)
        sys.exit(1)


COMMANDS = [run_cmd]
