"""``bench leaderboard``: versioned, ranked tables from a stored run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from harness.bench import build_leaderboard
from harness.cli import registry_from
from harness.leaderboard import per_image_csv, per_image_values, write_version
from harness.plugins import Registry
from harness.report import timing_footer, timing_mark
from harness.store import Store, write_text_atomic
from harness.types import PluginError
from harness.uncertainty import DEFAULT_RESAMPLES, DEFAULT_SEED


def rich_table(title: str, rows: Sequence[Mapping[str, Any]], provenance: Mapping[str, Any]) -> Table:
    metrics = provenance["ranking"]["metrics"]
    table = Table(title=title, title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("entry", overflow="fold", min_width=16)  # never cut: a user types these names
    for m in metrics:
        arrow = "↑" if m["higher_is_better"] else "↓"
        for split in m["splits"]:
            table.add_column(f"{m['name']} {arrow}\n{split}", justify="right")
            table.add_column("rk", justify="right")
    table.add_column("Σ rank", justify="right")
    profile = [c for c in ("fit_s", "latency_p50_ms", "images_per_s", "peak_rss_mb") if any(r.get(c) not in ("", None) for r in rows)]
    for col in profile:
        table.add_column(col, justify="right")
    table.add_column("status", no_wrap=True, overflow="ellipsis", max_width=60)
    footer = timing_footer([{k: str(v) for k, v in r.items()} for r in rows], profile)
    if footer:
        table.caption, table.caption_justify = footer.replace("`", ""), "left"
    for r in rows:
        cells = [str(r["rank"]), r["entry"] + {"published": " †", "submitted": " §"}.get(r["source"], "")]
        for m in metrics:
            for split in m["splits"]:
                cells += [str(r[f"{m['name']}.{split}.score"]), str(r[f"{m['name']}.{split}.rank"])]
        cells.append(str(r["rank_sum"]))
        mark = timing_mark(r)
        cells += [_fmt(r.get(c)) + (mark if r.get(c) not in ("", None) else "") for c in profile]
        status = r["status"]
        cells.append(status if status == "ok" else f"[red]{status}[/]")
        table.add_row(*cells)
    return table


def _fmt(v: Any) -> str:
    if v in ("", None):
        return ""
    return f"{float(v):.3g}" if isinstance(v, (int, float)) else str(v)


def datasets_in_run(store: Store, run: Mapping[str, Any]) -> list[str]:
    names = []
    for key in run["cells"]:
        rec = store.cell(key)
        if rec is not None and rec["dataset"] not in names:
            names.append(rec["dataset"])
    return names


def wide_console() -> Console:
    """A console that does not squeeze tables to 80 columns when output is not a terminal."""
    console = Console()
    return console if console.is_terminal else Console(width=220)


def show(registry: Registry, store: Store, run: Mapping[str, Any], metrics: Sequence[str] | None = None) -> None:
    console = wide_console()
    for dataset in datasets_in_run(store, run):
        try:
            _, rows, prov = build_leaderboard(registry, store, run, dataset, metrics=metrics)
        except PluginError as exc:
            console.print(f"[yellow]no table for {dataset}:[/] {exc}")
            continue
        console.print(rich_table(f"{dataset} — run {run['run_id']}", rows, prov))


def resolve_reference(registry: Registry, dataset: str, text: str | None,
                      citation: str | None) -> tuple[Path | None, str | None]:
    """``--reference``: a file, or the name of a table the dataset plugin ships."""
    if text is None:
        return None, citation
    path = Path(text)
    if path.is_file():
        return path, citation
    entry = registry.get("dataset", dataset)
    packaged = getattr(entry.obj, "references", {}) or {}
    if text in packaged:
        import importlib.resources

        file_name, cited = packaged[text]
        package = entry.obj.__module__.rsplit(".", 1)[0]
        table = importlib.resources.files(package) / "data" / file_name
        with importlib.resources.as_file(table) as real:
            return Path(real), citation or cited
    names = ", ".join(sorted(packaged)) or "none"
    raise click.BadParameter(f"{text!r} is neither a file nor a published table of {dataset!r} "
                             f"(packaged tables: {names})", param_hint="--reference")


@click.command("leaderboard")
@click.option("--run", "run_id", default="latest", show_default=True, help="Run id in the store.")
@click.option("--store", "store_path", type=click.Path(path_type=Path), envvar="BENCH_RUNS", default="runs", show_default=True)
@click.option("--dataset", "datasets", multiple=True, help="Dataset(s) of the run (default: all of them).")
@click.option("--metrics", default=None, help="Comma-separated metrics to rank (default: the dataset's primary metrics).")
@click.option("--reference", "reference_text", default=None,
              help="Published results: a table the dataset ships, by name (e.g. glas2015), "
                   "or a CSV file (entry, split, one column per metric).")
@click.option("--reference-citation", default=None, help="Where the published results come from.")
@click.option("--out", "out_root", type=click.Path(path_type=Path), default="leaderboards", show_default=True)
@click.option("--version", "version", default=None, help="Version folder name (default: next vN; unchanged tables reuse the latest).")
@click.option("--bootstrap", type=click.IntRange(min=0), default=DEFAULT_RESAMPLES, show_default=True,
              help="Bootstrap resamples over images for intervals, rank intervals and paired tests (0: none).")
@click.option("--bootstrap-seed", type=int, default=DEFAULT_SEED, show_default=True, help="Seed of the bootstrap resampling.")
@click.pass_context
def leaderboard_cmd(ctx: click.Context, run_id: str, store_path: Path, datasets: tuple[str, ...], metrics: str | None,
                    reference_text: str | None, reference_citation: str | None, out_root: Path, version: str | None,
                    bootstrap: int, bootstrap_seed: int) -> None:
    """Write leaderboards/<dataset>/<version>/leaderboard.{csv,md} and run.json from a run (and
    suite.toml, the run's suite file, when it was started with --config)."""
    registry = registry_from(ctx)
    store = Store(store_path)
    run = store.run(run_id)
    chosen = [m.strip() for m in metrics.split(",")] if metrics else None
    console = wide_console()
    if run.get("status") != "finished":
        console.print(f"[yellow]run {run['run_id']} is {run.get('status')}: entries without intact results "
                      "are listed as missing and not ranked[/]")
    for dataset in datasets or datasets_in_run(store, run):
        reference, citation = resolve_reference(registry, dataset, reference_text, reference_citation)
        text, rows, prov = build_leaderboard(registry, store, run, dataset, metrics=chosen,
                                             reference=reference, reference_citation=citation,
                                             bootstrap=bootstrap, bootstrap_seed=bootstrap_seed)
        suite = run.get("suite") or {}
        files = {"suite.toml": suite["text"]} if suite.get("text") else None
        if files:
            prov["suite"] = {"file": suite.get("file"), "copy": "suite.toml"}
        folder, new = write_version(out_root, dataset, text, prov, version, files=files)
        records = [r for r in (store.cell(k) for k in prov["cells"]) if r is not None]
        write_text_atomic(folder / "per_image.csv", per_image_csv(per_image_values(store, records)))
        console.print(rich_table(f"{dataset} ({folder.name})", rows, prov))
        console.print(f"{'wrote' if new else 'unchanged, kept'} {folder}")


COMMANDS = [leaderboard_cmd]
