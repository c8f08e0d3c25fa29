"""The bench command as a user types it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def bench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from harness.cli import main; main()", *args], cwd=cwd,
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=300)


def test_list_and_plugins_show_kind_distribution_version_and_builtin(invoke) -> None:  # type: ignore[no-untyped-def]
    out = json.loads(invoke("list", "methods", "--json").output)
    otsu = next(m for m in out if m["name"] == "otsu")
    assert otsu["distribution"] == "segbench" and otsu["builtin"] is True and otsu["learns"] is False
    assert otsu["params"] == {"channel": "gray", "polarity": "auto", "min_size": 10, "postprocess": "cc"}
    decode = next(m for m in out if m["name"] == "decode")
    assert decode["distribution"] == "tests" and decode["builtin"] is False
    plugins = json.loads(invoke("plugins", "--json").output)
    kinds = {(p["kind"], p["name"]) for p in plugins["plugins"]}
    assert {("dataset", "dsb2018-sample"), ("method", "otsu"), ("metric", "dice")} <= kinds
    assert plugins["failed"] == []
    human = invoke("list", "datasets").output
    assert "dsb2018-sample" in human and "segbench" in human


def test_run_leaderboard_check_round_trip(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = invoke("run", "--datasets", "squares", "--methods", "decode,decode(shift=1)", "--metrics", "dice,iou")
    assert result.exit_code == 0, result.output
    assert "decode(shift=1)" in result.output and "0.6250" in result.output
    result = invoke("leaderboard", "--metrics", "dice,iou")
    assert result.exit_code == 0
    csv_path = tmp_path / "leaderboards" / "squares" / "v1" / "leaderboard.csv"
    assert csv_path.is_file() and (csv_path.parent / "leaderboard.md").is_file()
    assert json.loads((csv_path.parent / "run.json").read_text())["dataset"] == "squares"
    ok = invoke("check", "--baseline", str(csv_path))
    assert ok.exit_code == 0 and "no regression" in ok.output
    # the shifted entry disappears from a new run: the gate fails and says so
    invoke("run", "--datasets", "squares", "--methods", "decode", "--metrics", "dice,iou", "--quiet")
    bad = invoke("check", "--baseline", str(csv_path))
    assert bad.exit_code == 1 and "entry disappeared" in bad.output


def test_default_run_on_embedded_data_end_to_end(tmp_path: Path) -> None:
    proc = bench("run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "dsb2018-sample" in proc.stdout and "otsu" in proc.stdout
    cells = list((tmp_path / "runs" / "cells").glob("*/cell.json"))
    record = json.loads(cells[0].read_text())
    assert record["status"] == "done" and record["n_images"] == 10
    assert 0.5 < record["splits"]["test"]["dice"]["value"] <= 1.0


def test_unknown_method_error_suggests_the_closest(tmp_path: Path) -> None:
    proc = bench("run", "--methods", "otsuu", cwd=tmp_path)
    assert proc.returncode == 2
    assert "unknown method 'otsuu'" in proc.stderr and "did you mean 'otsu'?" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_leaderboard_without_runs_says_how_to_start_one(tmp_path: Path) -> None:
    proc = bench("leaderboard", cwd=tmp_path)
    assert proc.returncode == 2 and "start one with 'bench run'" in proc.stderr


def test_run_exits_non_zero_when_a_cell_errored_and_checks_its_arguments(invoke) -> None:  # type: ignore[no-untyped-def]
    failed = invoke("run", "--datasets", "squares", "--methods", "decode,crash", "--metrics", "dice", "--quiet")
    assert failed.exit_code == 1
    assert "1 cell(s) failed: squares · crash · seed 0" in failed.output and "--allow-errors" in failed.output
    tolerated = invoke("run", "--datasets", "squares", "--methods", "crash", "--metrics", "dice", "--quiet",
                       "--allow-errors", "--force")
    assert tolerated.exit_code == 0, tolerated.output
    for bad, option in ((["--jobs", "0"], "--jobs"), (["--cell-timeout", "-1"], "--cell-timeout"),
                        (["--seeds", ""], "--seeds")):
        refused = invoke("run", "--datasets", "squares", "--methods", "decode", "--quiet", *bad)
        assert refused.exit_code == 2 and option in refused.output


def test_an_explicit_cuda_device_must_exist(registry, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import torch

    from harness.bench import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="'cuda'.*0 usable CUDA device"):
        resolve_device("cuda", registry, [("decode", {})])
    with pytest.raises(ValueError, match="expected auto, cpu, cuda or cuda:N"):
        resolve_device("gpu", registry, [("decode", {})])
    assert resolve_device("auto", registry, [("decode", {})]) == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1", registry, [("decode", {})]) == "cuda:1"
    with pytest.raises(ValueError, match="'cuda:2'"):
        resolve_device("cuda:2", registry, [("decode", {})])


def test_permission_errors_are_one_line(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import click

    from harness import cli as cli_module

    @click.command("locked")
    def locked() -> None:
        raise PermissionError(13, "Permission denied", "/srv/runs/r1/cell.json")

    cli_module.cli.add_command(locked)
    try:
        with pytest.raises(SystemExit) as exited:
            cli_module.main(["locked"])
    finally:
        cli_module.cli.commands.pop("locked")
    assert exited.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert lines == ["error: cannot write /srv/runs/r1/cell.json: Permission denied; check the folder's permissions"]
