"""``bench list`` and ``bench plugins``: what is installed."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.cli import registry_from
from harness.plugins import Entry, Kind

#: columns holding what a user types (plugin, distribution and entry-point names)
NAME_COLUMNS = ("name", "distribution", "entry point")


def print_table(table: Table) -> None:
    """Print a table without cutting a name: on a terminal name columns fold rather than end
    in an ellipsis; elsewhere (a pipe, a file) the table is as wide as its widest row."""
    console = Console()
    if not console.is_terminal:
        natural = console.measure(table, options=console.options.update_width(1_000_000)).maximum
        console = Console(width=max(console.width, natural), soft_wrap=False)
    console.print(table)


def _column(table: Table, name: str) -> None:
    if name in NAME_COLUMNS:
        table.add_column(name, no_wrap=True, overflow="fold")
    else:
        table.add_column(name)


def _summary(entry: Entry) -> str:
    obj = entry.obj
    return str(getattr(obj, "description", "") or "")


def _details(entry: Entry) -> dict[str, object]:
    d = entry.describe()
    obj = entry.obj
    d["description"] = _summary(entry)
    if entry.kind == "dataset":
        d.update(splits=list(obj.splits), eval_splits=list(obj.eval_splits), provides=sorted(obj.provides),
                 license=obj.license, primary_metrics=list(obj.primary_metrics))
    elif entry.kind == "method":
        d.update(outputs=sorted(obj.outputs), learns=obj.learns, params=obj.param_defaults())
    else:
        d.update(higher_is_better=obj.higher_is_better, level=obj.level, requires=sorted(obj.requires),
                 reference_requires=sorted(obj.reference_requires))
    return d


@click.command("list")
@click.argument("kind", type=click.Choice(["datasets", "methods", "metrics"]))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_cmd(ctx: click.Context, kind: str, as_json: bool) -> None:
    """List the installed datasets, methods or metrics."""
    registry = registry_from(ctx)
    singular: Kind = kind[:-1]  # type: ignore[assignment]
    entries = sorted(registry.table(singular).values(), key=lambda e: e.name)
    if as_json:
        click.echo(json.dumps([_details(e) for e in entries], indent=2, default=str))
        return
    table = Table(title=f"{kind} ({len(entries)})")
    for col in ("name", "version", "distribution", "built-in", "description"):
        _column(table, col)
    for e in entries:
        table.add_row(e.name, e.version, f"{e.source.distribution} {e.source.version}",
                      "yes" if e.source.builtin else "no", _summary(e))
    print_table(table)


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def plugins_cmd(ctx: click.Context, as_json: bool) -> None:
    """Every plugin with its kind, distribution, version and whether it is built in."""
    registry = registry_from(ctx)
    entries = registry.entries()
    if as_json:
        payload = {
            "plugins": [e.describe() for e in entries],
            "failed": [vars(f) for f in registry.failures],
        }
        click.echo(json.dumps(payload, indent=2))
        return
    table = Table(title=f"segbench plugins ({len(entries)})")
    for col in ("kind", "name", "version", "distribution", "entry point", "built-in"):
        _column(table, col)
    for e in entries:
        table.add_row(e.kind, e.name, e.version, f"{e.source.distribution} {e.source.version}",
                      e.source.entry_point, "yes" if e.source.builtin else "no")
    print_table(table)
    console = Console(soft_wrap=True)
    for f in registry.failures:
        console.print(f"[red]failed to load[/] {escape(repr(f.entry_point))} from {escape(repr(f.distribution))}: "
                      f"{escape(f.error)}", highlight=False)


COMMANDS = [list_cmd, plugins_cmd]
