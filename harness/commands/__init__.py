"""The built-in ``bench`` subcommands, registered through the same hook third parties use."""

from __future__ import annotations

import importlib

import click

from harness.commands.profile import bench_profile_columns  # noqa: F401 - the built-in profile columns
from harness.hookspecs import hookimpl

MODULES = ("inspect", "run", "leaderboard", "check", "data", "report", "profile")


@hookimpl
def bench_register_commands(cli: click.Group) -> None:
    for name in MODULES:
        module = importlib.import_module(f"harness.commands.{name}")
        for command in module.COMMANDS:
            cli.add_command(command)
