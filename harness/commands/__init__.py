"""The built-in ``bench`` subcommands and executors, registered through the same hooks third
parties use (this module is the harness's own ``segbench`` entry point)."""

from __future__ import annotations

import importlib

import click

from harness.commands.profile import bench_profile_columns  # noqa: F401 - the built-in profile columns
from harness.executors import bench_register_executors  # noqa: F401 - the built-in executors
from harness.hookspecs import hookimpl

MODULES = ("inspect", "run", "leaderboard", "check", "data", "report", "profile", "show", "score")


@hookimpl
def bench_register_commands(cli: click.Group) -> None:
    for name in MODULES:
        module = importlib.import_module(f"harness.commands.{name}")
        for command in module.COMMANDS:
            cli.add_command(command)
