"""``bench check``: a regression gate for CI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from harness.bench import build_leaderboard
from harness.check import changes, check_baseline, check_tolerances, parse_tolerances
from harness.cli import registry_from
from harness.leaderboard import read_csv
from harness.store import Store


@click.command("check")
@click.option("--baseline", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Baseline leaderboard.csv (e.g. leaderboards/<dataset>/LATEST version).")
@click.option("--current", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Current leaderboard.csv (default: computed from --run for the baseline's dataset).")
@click.option("--run", "run_id", default="latest", show_default=True)
@click.option("--store", "store_path", type=click.Path(path_type=Path), envvar="BENCH_RUNS", default="runs", show_default=True)
@click.option("--tolerance", "tolerances", multiple=True, help="METRIC=AMOUNT (absolute) or METRIC=AMOUNT% (relative); repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print findings as JSON.")
@click.pass_context
def check_cmd(ctx: click.Context, baseline: Path, current: Path | None, run_id: str, store_path: Path,
              tolerances: tuple[str, ...], as_json: bool) -> None:
    """Exit 1 when a metric moved the bad way beyond its tolerance, or an entry vanished or failed."""
    registry = registry_from(ctx)
    base_rows = read_csv(baseline)
    if current is not None:
        cur_rows = read_csv(current)
    else:
        prov_path = baseline.parent / "run.json"
        if not prov_path.is_file():
            raise click.UsageError(f"{prov_path} is missing, so the baseline's dataset is unknown; pass --current")
        prov = json.loads(prov_path.read_text())
        metrics = [m["name"] for m in prov["ranking"]["metrics"]]
        store = Store(store_path)
        _, ranked, _ = build_leaderboard(registry, store, store.run(run_id), prov["dataset"], metrics=metrics)
        cur_rows = [{k: str(v) for k, v in row.items()} for row in ranked]

    def higher(metric: str) -> bool:
        return registry.metric(metric).higher_is_better

    try:
        checked = check_baseline(base_rows, baseline)
        parsed = parse_tolerances(tolerances)
        check_tolerances(parsed, base_rows)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    found = changes(base_rows, cur_rows, higher, parsed)
    findings = [f for f in found if f.kind == "regression"]
    better = [f for f in found if f.kind == "improvement"]
    if as_json:
        summary = {
            "baseline": str(baseline),
            "entries_checked": checked,
            "verdict": "regression" if findings else "pass",
            "regressions": [vars(f) for f in findings],
            "improvements": [vars(f) for f in better],
        }
        click.echo(json.dumps(summary, indent=2))
        sys.exit(1 if findings else 0)
    for title, rows in ((f"{len(better)} improvement(s)", better), (f"{len(findings)} regression(s)", findings)):
        if not rows:
            continue
        table = Table(title=f"{title} against {baseline}")
        for col in ("entry", "column", "baseline", "current", "change", "problem"):
            table.add_column(col, no_wrap=col == "entry", overflow="fold")
        for f in rows:
            table.add_row(f.entry, f.column, f.baseline, f.current, f.change, f.problem)
        Console(soft_wrap=False).print(table)
    if not findings:
        click.echo(f"no regression: {checked} measured entries checked against {baseline}")
    sys.exit(1 if findings else 0)


COMMANDS = [check_cmd]
