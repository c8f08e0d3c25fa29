"""The ``bench`` command: a tiny click root; every subcommand arrives through the
``bench_register_commands`` hook, the built-in ones exactly like a third party's."""

from __future__ import annotations

import errno
import sys
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

import harness
from harness.plugins import Registry, build_registry, call_each
from harness.types import DataError, PluginError

err = Console(stderr=True, soft_wrap=True)  # never hard-wrap an error (paths, names)
#: errno values that mean "this folder cannot take the file" (read-only, full, over quota)
NOT_WRITABLE = {errno.EROFS, errno.ENOSPC, errno.EDQUOT}


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
    for plugin in registry.pm.get_plugins():  # one plugin at a time: a bad one cannot stop `bench`
        try:
            call_each(registry.pm, "bench_register_commands", plugin, cli=cli)
        except Exception as exc:  # noqa: BLE001 - reported, the other commands still work
            name = registry.pm.get_name(plugin) or repr(plugin)
            err.print(
                f"[yellow]warning:[/] plugin {name.rsplit(':', 1)[0]!r} failed to add its "
                f"commands and is skipped: {type(exc).__name__}: {exc}"
            )
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
    except PermissionError as exc:
        err.print(f"[red]error:[/] cannot write {escape(str(exc.filename))}: {exc.strerror}; check the folder's permissions",
                  highlight=False)
        sys.exit(2)
    except OSError as exc:
        if exc.errno in NOT_WRITABLE and exc.filename:
            err.print(f"[red]error:[/] cannot write {escape(str(exc.filename))}: {exc.strerror}; choose another folder "
                      "or free space there", highlight=False)
        else:
            err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(2)
    except (PluginError, DataError, ValueError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(2)
