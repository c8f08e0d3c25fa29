"""The built-in ``bench`` subcommands, registered through the same hook third parties use."""

from __future__ import annotations

import click

from harness.hookspecs import hookimpl


@hookimpl
def bench_register_commands(cli: click.Group) -> None:
    from harness.commands import inspect

    for command in inspect.COMMANDS:
        cli.add_command(command)
