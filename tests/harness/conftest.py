"""Fixtures shared by the harness tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.plugins import Registry


@pytest.fixture
def invoke(registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run ``bench ARGS…`` in process with the test registry, from an empty working folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BENCH_RUNS", raising=False)
    registry.pm.hook.bench_register_commands(cli=cli)

    def run(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(cli, list(args), obj=registry, catch_exceptions=False)

    return run
