"""``bench run``: the cross product datasets × methods × seeds."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.bench import DEFAULT_DATASETS, DEFAULT_METHODS, parse_specs, parse_value, run_benchmark
from harness.cli import registry_from
from harness.commands.leaderboard import show
from harness.plugins import Registry, unknown_message
from harness.runner import CellSpec
from harness.store import Store
from harness.suite import load_suite
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
@click.option("--executor", default=None, metavar="NAME",
              help="Where cells run: a registered executor ('bench plugins' lists them; built in: local, process, "
                   "ray, slurm). Default: local, or process when --jobs > 1 or --cell-timeout is set.")
@click.option("--executor-option", "-X", "executor_option", multiple=True, metavar="KEY=VALUE",
              help="An option of the chosen executor (repeatable).")
@click.option("--gpus", default=None, metavar="IDS",
              help="Pin GPU cells to these GPUs, one per running cell (process executor), e.g. 0,1.")
@click.option("--ray-address", default=None, help="Ray cluster to join: auto or HOST:PORT (default: start one here).")
@click.option("--ray-num-cpus", type=float, default=None, help="CPUs per cell task (default: the method's num_cpus, 1).")
@click.option("--ray-num-gpus", type=float, default=None,
              help="GPUs per cell task (default: 1 for a GPU method on a cuda device, else 0).")
@click.option("--slurm-partition", default=None, help="SLURM partition of the job array.")
@click.option("--slurm-gpus-per-task", type=int, default=None, help="GPUs per array task.")
@click.option("--slurm-time", type=int, default=None, help="Minutes per array task; past it the task is requeued.")
@click.option("--slurm-array-parallelism", type=int, default=None, help="Array tasks running at once.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True, help="Cells at once (process executor).")
@click.option("--cell-timeout", type=click.FloatRange(min=0, min_open=True), default=None, help="Seconds before a cell is stopped and recorded as an error.")
@click.option("--force", is_flag=True, help="Recompute cells that are already finished.")
@click.option("--store", "store_path", type=click.Path(path_type=Path), envvar="BENCH_RUNS", default="runs", show_default=True)
@click.option("--run-id", default=None, help="Name of this run (default: timestamp).")
@click.option("--quiet", is_flag=True, help="No progress bar or table.")
@click.option("--allow-errors", is_flag=True, help="Exit 0 even when cells errored (sweeps that tolerate failures).")
@click.option("--save-probabilities", is_flag=True,
              help="Keep probability maps with the saved predictions (large; label maps are always kept).")
@click.option("--config", "config", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Suite file (TOML): datasets, methods, seeds, metrics, budget, executor; flags given override it.")
@click.pass_context
def run_cmd(ctx: click.Context, datasets: str, methods: str, seeds: str, metrics: str | None, budget: str, device: str,
            executor: str | None, executor_option: tuple[str, ...], jobs: int, cell_timeout: float | None, force: bool, store_path: Path,
            run_id: str | None, quiet: bool, allow_errors: bool, save_probabilities: bool, gpus: str | None,
            config: Path | None, **backend_flags: Any) -> None:
    """Fit, predict, score and profile every cell; finished cells are reused."""
    registry = registry_from(ctx)
    suite = load_suite(config, list(registry.datasets), list(registry.methods)) if config else None
    file = suite.settings if suite else {}

    def from_file(param: str) -> bool:
        """True when the suite file sets this and the flag was not given."""
        given = ctx.get_parameter_source(param) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)
        return not given and param in file

    if from_file("budget"):
        budget = file["budget"]
    if from_file("device"):
        device = str(file["device"])
    if from_file("jobs"):
        jobs = int(file["jobs"])
    if from_file("cell_timeout"):
        cell_timeout = float(file["cell_timeout"])
    if from_file("executor"):
        executor = str(file["executor"])
    executor, options = executor_choice(registry, executor, executor_option, backend_flags,
                                        default="process" if jobs > 1 or cell_timeout or gpus else "local")
    if suite is not None and executor == file.get("executor", executor):
        options = {**file.get("executor_options", {}), **options}  # flags win over the file
    if gpus is not None:
        options["gpus"] = gpus
    method_budgets = None
    if suite is not None and suite.datasets and ctx.get_parameter_source("datasets") == ParameterSource.DEFAULT:
        ds = suite.datasets
    else:
        ds = parse_specs(datasets, registry.datasets, "dataset")
    if suite is not None and suite.methods and ctx.get_parameter_source("methods") == ParameterSource.DEFAULT:
        ms, method_budgets = suite.methods, suite.method_budgets
    else:
        ms = parse_specs(methods, registry.methods, "method")
    if from_file("seeds"):
        seed_list = list(file["seeds"])
    else:
        try:
            seed_list = [int(s) for s in seeds.split(",") if s.strip()]
        except ValueError:
            raise click.BadParameter(f"{seeds!r}: seeds are comma-separated integers", param_hint="--seeds") from None
    if not seed_list:
        raise click.BadParameter("give at least one seed, e.g. --seeds 0,1,2", param_hint="--seeds")
    if from_file("metrics"):
        chosen: list[str] | None = list(file["metrics"])
    else:
        chosen = [m.strip() for m in metrics.split(",")] if metrics else None
    store = Store(store_path)
    console = Console(stderr=True, soft_wrap=True)  # an error or path is never cut into lines
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=quiet, transient=False) as progress:
        task = progress.add_task("cells", total=None)
        counts: dict[str, int] = {}
        errored: list[str] = []

        def on_event(kind: str, cell: CellSpec, record: Mapping[str, Any] | None) -> None:
            if progress.tasks[task].total is None:
                progress.update(task, total=0)
            if kind in ("submitted", "rescoring"):
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
                               executor=executor, executor_options=options, jobs=jobs,
                               method_budgets=method_budgets, suite=suite.record() if suite else None, cell_timeout=cell_timeout, force=force,
                               save_probabilities=save_probabilities, store=store, run_id=run_id, on_event=on_event)
    if not quiet:
        show(registry, store, store.run(result.run_id), chosen)
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(result.counts().items()))
    console.print(f"run {result.run_id} in {store.root}: {summary} ({result.reused} reused, "
                  f"{result.rescored} rescored from saved predictions); "
                  f"'bench leaderboard --run {result.run_id}' writes the versioned leaderboard")
    if errored and not allow_errors:
        console.print(f"[red]error:[/] {len(errored)} cell(s) failed: {'; '.join(errored)}; "
                      f"each error is printed above and kept in its record under {store.root} "
                      "(pass --allow-errors to exit 0 anyway)",
                      soft_wrap=True)
        sys.exit(1)




def executor_choice(registry: Registry, executor: str | None, pairs: tuple[str, ...], flags: Mapping[str, Any],
                    default: str) -> tuple[str, dict[str, Any]]:
    """The executor's name and options from ``--executor``, ``-X KEY=VALUE`` and the backend flags."""
    given = {k: v for k, v in flags.items() if v is not None}
    owners = {k.split("_", 1)[0] for k in given}
    if executor is None:
        executor = owners.pop() if len(owners) == 1 else default
    if executor not in registry.executors:
        raise click.BadParameter(unknown_message("executor", executor, registry.executors), param_hint="--executor")
    stray = sorted(k for k in given if k.split("_", 1)[0] != executor)
    if stray:
        flag = "--" + stray[0].replace("_", "-")
        raise click.BadParameter(f"{flag} applies to --executor {stray[0].split('_', 1)[0]}, not {executor!r}",
                                 param_hint=flag)
    options = {k.split("_", 1)[1]: v for k, v in given.items()}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--executor-option")
        key, value = pair.split("=", 1)
        options[key.strip().replace("-", "_")] = parse_value(value)
    return executor, options


COMMANDS = [run_cmd]
