"""``bench check``: a regression gate for CI, on leaderboard scores (``--baseline``) or on a
speed and memory profile (``--profile-baseline``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from harness.bench import build_leaderboard
from harness.check import (
    changes,
    check_baseline,
    check_profile_baseline,
    check_profile_tolerances,
    check_tolerances,
    compare_profiles,
    parse_tolerances,
    setting_differences,
)
from harness.cli import registry_from
from harness.leaderboard import read_csv
from harness.store import Store


@click.command("check")
@click.option("--baseline", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Baseline leaderboard.csv (e.g. leaderboards/<dataset>/LATEST version).")
@click.option("--profile-baseline", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Baseline profile.csv (profiles/<machine>/vN/) instead: gate a profile's timing and memory.")
@click.option("--current", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Current leaderboard.csv (default: computed from --run for the baseline's dataset), or with "
                   "--profile-baseline the current profile.csv (default: the newest version beside the baseline).")
@click.option("--run", "run_id", default="latest", show_default=True)
@click.option("--store", "store_path", type=click.Path(path_type=Path), envvar="BENCH_RUNS", default="runs", show_default=True)
@click.option("--tolerance", "tolerances", multiple=True, help="METRIC=AMOUNT (absolute) or METRIC=AMOUNT% (relative); repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print findings as JSON.")
@click.pass_context
def check_cmd(ctx: click.Context, baseline: Path | None, profile_baseline: Path | None, current: Path | None,
              run_id: str, store_path: Path, tolerances: tuple[str, ...], as_json: bool) -> None:
    """Exit 1 when a metric moved the bad way beyond its tolerance, or an entry vanished or failed.

    With --profile-baseline: exit 1 when a configuration of the baseline profile is missing or
    did not run, or a column named by --tolerance (relative, e.g. latency_p50_ms=300%) is worse
    than the baseline by more than that factor; every gated ratio is printed."""
    if (baseline is None) == (profile_baseline is None):
        raise click.UsageError("give --baseline LEADERBOARD.csv or --profile-baseline PROFILE.csv (one of them)")
    if profile_baseline is not None:
        check_profile(profile_baseline, current, tolerances, as_json)
        return
    assert baseline is not None
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


def newest_profile(baseline: Path) -> Path:
    """The newest ``vN/profile.csv`` beside the baseline's version folder, if newer than it."""
    folder = baseline.parent.parent
    versions = sorted((int(p.name[1:]), p) for p in folder.glob("v*")
                      if p.name[1:].isdigit() and (p / "profile.csv").is_file())
    if not versions or versions[-1][1].resolve() == baseline.parent.resolve():
        raise click.UsageError(f"no profile newer than {baseline} in {folder}; write one with 'bench profile' "
                               "(same settings as the baseline) or pass --current PROFILE.csv")
    return versions[-1][1] / "profile.csv"


def check_profile(baseline: Path, current: Path | None, tolerances: tuple[str, ...], as_json: bool) -> None:
    current = current or newest_profile(baseline)
    base_rows, cur_rows = read_csv(baseline), read_csv(current)
    try:
        ran = check_profile_baseline(base_rows, baseline)
        parsed = parse_tolerances(tolerances)
        check_profile_tolerances(parsed, base_rows, baseline)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    found = compare_profiles(base_rows, cur_rows, parsed)
    bad = [f for f in found if f.regression]
    notes: list[str] = []
    provenances = [p.parent / "provenance.json" for p in (baseline, current)]
    if all(p.is_file() for p in provenances):
        b_prov, c_prov = (json.loads(p.read_text()) for p in provenances)
        notes = setting_differences(b_prov, c_prov)
    if as_json:
        click.echo(json.dumps({"baseline": str(baseline), "current": str(current), "configurations_checked": ran,
                               "verdict": "regression" if bad else "pass", "setting_differences": notes,
                               "comparisons": [vars(f) for f in found]}, indent=2))
        sys.exit(1 if bad else 0)
    table = Table(title=f"profile {current} against {baseline}")
    for col in ("configuration", "column", "baseline", "current", "ratio", "tolerance", "verdict"):
        table.add_column(col, no_wrap=col == "configuration", overflow="fold",
                         justify="right" if col in ("baseline", "current", "ratio") else "left")
    for f in found:
        ratio = "" if f.ratio is None else f"{f.ratio:.2f}"
        verdict = f"[red]regression: {f.problem}[/]" if f.regression else "ok"
        table.add_row(f.configuration, f.column, f.baseline, f.current, ratio, f.allowed, verdict)
    Console(soft_wrap=False, width=max(Console().width, 160)).print(table)
    for note in notes:
        click.echo(f"note: settings differ from the baseline ({note}); the numbers may not be comparable")
    if bad:
        click.echo(f"{len(bad)} profile regression(s) against {baseline}")
    else:
        gated = len({f.column for f in found if f.ratio is not None})
        click.echo(f"no profile regression: {ran} configuration(s), {gated} gated column(s) checked against {baseline}")
    sys.exit(1 if bad else 0)


COMMANDS = [check_cmd]
