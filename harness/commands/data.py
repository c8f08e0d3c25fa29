"""``bench data``: list, describe, verify and fetch datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from harness.data import (
    MAX_EXTRACT_BYTES,
    MAX_EXTRACT_RATIO,
    FileDataset,
    data_root,
    dataset_dir,
    fetch,
)
from harness.plugins import Registry, build_registry
from harness.types import DataError, Dataset, PluginError


def _registry() -> Registry:
    return build_registry(warn=False)


def _open(registry: Registry, name: str, root: Path | None) -> Dataset:
    try:
        cls = registry.get("dataset", name).obj
    except PluginError as exc:
        raise click.ClickException(str(exc)) from exc
    if "root" in cls.param_names():
        return cls(root=root)  # type: ignore[no-any-return]
    if root is not None:
        raise click.ClickException(f"dataset {name!r} takes no data folder (it is built in)")
    return cls()  # type: ignore[no-any-return]


def _location(dataset: Dataset) -> str:
    return str(dataset.directory) if isinstance(dataset, FileDataset) else "(built in, no files)"


def _status(dataset: Dataset) -> tuple[bool, str]:
    """(present, what to show): present only when the layout check passes; otherwise
    "missing" (no folder) or "incomplete: FIRST PROBLEM (+N more)"."""
    if not isinstance(dataset, FileDataset):
        return True, "yes"
    if not dataset.directory.is_dir():
        return False, "no"
    problems = dataset.verify()
    if not problems:
        return True, "yes"
    more = f" (+{len(problems) - 1} more; see 'bench data verify {dataset.name}')"
    return False, f"incomplete: {problems[0]}" + (more if len(problems) > 1 else "")


def describe(dataset: Dataset, counts: bool = True) -> dict[str, Any]:
    """What ``bench data info`` reports, as plain data."""
    present, status = _status(dataset)
    info: dict[str, Any] = {
        "name": dataset.name,
        "version": dataset.version,
        "description": dataset.description,
        "location": _location(dataset),
        "present": present,
        "status": status,
        "splits": list(dataset.splits),
        "train_split": dataset.train_split,
        "eval_splits": list(dataset.eval_splits),
        "provides": sorted(dataset.provides),
        "class_names": list(dataset.class_names),
        "primary_metrics": list(dataset.primary_metrics),
        "license": dataset.license,
        "citation": dataset.citation,
    }
    summary = getattr(dataset, "protocol_summary", None)
    if callable(summary) and info["present"]:
        try:
            info["protocol"] = summary()
        except DataError as exc:
            info["protocol"] = f"unknown ({exc})"
    if isinstance(dataset, FileDataset):
        info["homepage"] = dataset.homepage
        info["how_to_obtain"] = dataset.download_help
        info["archives"] = [{"url": a.url, "sha256": a.sha256} for a in dataset.archives]
    if counts and status != "no":
        try:
            info["counts"] = {split: len(dataset.sample_ids(split)) for split in dataset.splits}
        except DataError as exc:
            info["error"] = str(exc)
    return info


@click.group("data")
def data() -> None:
    """Locate, describe, verify and fetch datasets (data root: $BENCH_DATA or a per-user folder)."""


@data.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_datasets(as_json: bool) -> None:
    """Every installed dataset, where its files are looked for, and whether they are there."""
    registry = _registry()
    rows: list[dict[str, Any]] = []
    for name in sorted(registry.datasets):
        dataset = _open(registry, name, None)
        present, status = _status(dataset)
        rows.append(
            {
                "name": name,
                "present": present,
                "status": status,
                "location": _location(dataset),
                "description": dataset.description,
            }
        )
    if as_json:
        click.echo(json.dumps({"data_root": str(data_root()), "datasets": rows}, indent=2))
        return
    table = Table(title=f"datasets (data root {data_root()})")
    # a name is typed back by users: never cut or folded, even when the output is piped
    table.add_column("name", no_wrap=True, min_width=max((len(r["name"]) for r in rows), default=4))
    for column in ("present", "location", "description"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            str(row["name"]),
            str(row["status"]),
            str(row["location"]),
            str(row["description"]),
        )
    Console().print(table)


@data.command("info")
@click.argument("name")
@click.option(
    "--root",
    type=click.Path(path_type=Path),
    help="The dataset's folder (overrides the data root).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(name: str, root: Path | None, as_json: bool) -> None:
    """Metadata, licence, citation, location and split sizes of NAME."""
    details = describe(_open(_registry(), name, root))
    if as_json:
        click.echo(json.dumps(details, indent=2))
        return
    for key, value in details.items():
        if isinstance(value, (list, dict)):
            value = json.dumps(value)
        click.echo(f"{key}: {value}")


@data.command("verify")
@click.argument("name")
@click.option(
    "--root",
    type=click.Path(path_type=Path),
    help="The dataset's folder (overrides the data root).",
)
@click.option("--deep", is_flag=True, help="Also decode every sample of every split.")
def verify(name: str, root: Path | None, deep: bool) -> None:
    """Check that NAME's files are complete (and with --deep, readable); exit 1 if not."""
    dataset = _open(_registry(), name, root)
    problems = dataset.verify() if isinstance(dataset, FileDataset) else []
    if deep:  # decode everything, even when the quick check already found problems
        for split in dataset.splits:
            try:
                sample_ids = dataset.sample_ids(split)
            except (DataError, OSError, ValueError) as exc:
                problems.append(f"{split}: {exc}")
                continue
            for sample_id in sample_ids:
                try:
                    dataset.load(split, sample_id)
                except (DataError, OSError, ValueError) as exc:
                    problems.append(f"{split}/{sample_id}: {exc}")
    if problems:
        for problem in problems:
            click.echo(f"problem: {problem}", err=True)
        raise click.ClickException(f"{name}: {len(problems)} problem(s) in {_location(dataset)}")
    click.echo(f"{name}: ok ({_location(dataset)})")


@data.command("fetch")
@click.argument("name")
@click.option(
    "--from",
    "source",
    multiple=True,
    help="A local folder or archive, or a URL (file://, https://); repeat for multi-part releases.",
)
@click.option("--sha256", multiple=True, help="Expected sha256 of each --from archive, in order.")
@click.option(
    "--root", type=click.Path(path_type=Path), help="Install here instead of the data root."
)
@click.option(
    "--force",
    is_flag=True,
    help="Install even when the fetched files fail the layout check (problems become warnings).",
)
@click.option(
    "--max-size",
    type=click.FloatRange(min=0, min_open=True),
    default=MAX_EXTRACT_BYTES / 1e9,
    show_default=True,
    help="Largest total size (GB) one archive may unpack to.",
)
@click.option(
    "--max-ratio",
    type=click.FloatRange(min=1),
    default=MAX_EXTRACT_RATIO,
    show_default=True,
    help="Largest unpacked-to-packed size ratio of one archive.",
)
def fetch_command(
    name: str,
    source: tuple[str, ...],
    sha256: tuple[str, ...],
    root: Path | None,
    force: bool,
    max_size: float,
    max_ratio: float,
) -> None:
    """Install NAME into its data folder, from --from or the dataset's official archives.

    The files are unpacked into a staging folder and checked there; only a complete copy is
    installed (see --force).
    """
    registry = _registry()
    dataset = _open(registry, name, root)
    if not isinstance(dataset, FileDataset):
        raise click.ClickException(f"dataset {name!r} is built in; there is nothing to fetch")
    target = dataset_dir(name, root)
    sources: list[str]
    sums: list[str | None]
    if source:
        if sha256 and len(sha256) != len(source):
            raise click.ClickException("give one --sha256 per --from, in the same order")
        sources = list(source)
        sums = [digest for digest in sha256] if sha256 else [None] * len(source)
    elif dataset.archives:
        sources = [a.url for a in dataset.archives]
        sums = [a.sha256 for a in dataset.archives]
    else:
        raise click.ClickException(
            f"{name} has no automatic download. {dataset.download_help} "
            f"Then run 'bench data fetch {name} --from PATH'."
        )
    problems: list[str] = []

    def check(staging: Path) -> list[str]:
        found = _open(registry, name, staging).verify()  # type: ignore[attr-defined]
        problems.extend(problem.replace(str(staging), str(target)) for problem in found)
        return problems

    try:
        fetch(
            sources,
            target,
            sums,
            check=check,
            force=force,
            max_bytes=int(max_size * 1e9),
            max_ratio=max_ratio,
        )
    except DataError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{name}: installed in {target}")
    for problem in problems:
        click.echo(f"warning: {problem}", err=True)


COMMANDS = [data]
