"""The ``bench`` command: a tiny click root; every subcommand arrives through the
``bench_register_commands`` hook, the built-in ones exactly like a third party's."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.console import Console

import harness
from harness.plugins import Registry, build_registry
from harness.types import DataError, PluginError

err = Console(stderr=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(harness.__version__, prog_name="segbench")
def cli() -> None:
    """segbench: benchmark segmentation methods on histopathology and microscopy datasets."""


def registry_from(ctx: click.Context) -> Registry:
    obj: Any = ctx.find_root().obj
    assert isinstance(obj, Registry)
    return obj


def main(argv: list[str] | None = None) -> None:
    try:
        registry = build_registry(warn=False)
    except PluginError as exc:
        err.print(f"[red]error:[/] {exc}")
        sys.exit(2)
    for failure in registry.failures:
        err.print(
            f"[yellow]warning:[/] plugin {failure.entry_point!r} from distribution "
            f"{failure.distribution!r} failed to load and is skipped: {failure.error}"
        )
    assert registry.pm is not None
    registry.pm.hook.bench_register_commands(cli=cli)
    try:
        cli.main(args=argv, obj=registry, standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        err.print("interrupted: finished cells are stored; run the same command again to resume")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (PluginError, DataError, FileNotFoundError, ValueError) as exc:
        err.print(f"[red]error:[/] {exc}")
        sys.exit(2)
