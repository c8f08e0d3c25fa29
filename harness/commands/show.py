"""``bench show``: the worst images of a run by one metric, in the terminal."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from harness.cli import registry_from
from harness.commands.leaderboard import wide_console
from harness.leaderboard import per_image_values
from harness.store import Store


@click.command("show")
@click.option("--run", "run_id", default="latest", show_default=True, help="Run id in the store.")
@click.option("--store", "store_path", type=click.Path(path_type=Path), envvar="BENCH_RUNS", default="runs", show_default=True)
@click.option("--metric", required=True, help="Image-level metric to sort by, e.g. dice.")
@click.option("--worst", "worst", type=click.IntRange(min=1), default=10, show_default=True, help="How many images to list.")
@click.option("--dataset", default=None, help="Only this dataset of the run.")
@click.pass_context
def show_cmd(ctx: click.Context, run_id: str, store_path: Path, metric: str, worst: int, dataset: str | None) -> None:
    """List the K images with the worst value of METRIC (per entry, seed and split)."""
    registry = registry_from(ctx)
    spec = registry.metric(metric)
    store = Store(store_path)
    run = store.run(run_id)
    records = [r for r in (store.cell(k) for k in run["cells"]) if r is not None]
    if dataset is not None:
        records = [r for r in records if r.get("dataset") == dataset]
    rows = [r for r in per_image_values(store, records, [metric]) if r["value"] is not None]
    if not rows:
        raise click.ClickException(
            f"run {run['run_id']} has no per-image values of {metric!r}; is it an image-level metric of this run?"
        )
    rows.sort(key=lambda r: (r["value"] if spec.higher_is_better else -r["value"], r["entry"], r["sample_id"]))
    table = Table(title=f"worst {min(worst, len(rows))} images by {metric} — run {run['run_id']}")
    for col in ("entry", "seed", "split", "sample id", metric):
        table.add_column(col)
    for r in rows[:worst]:
        table.add_row(r["entry"], str(r["seed"]), r["split"], r["sample_id"], f"{r['value']:.4f}")
    wide_console().print(table)


COMMANDS = [show_cmd]
