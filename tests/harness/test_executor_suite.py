"""Suite files (``bench run --config suite.toml``): the file says what runs, explicit flags
override it, each method may have its own budget, and the file is recorded with the run."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.plugins import Registry
from harness.store import Store
from harness.suite import load_suite
from harness.types import BUDGETS, PluginError

SUITE = """\
seeds = [0, 1]
metrics = ["dice"]
budget = "quick"

[[datasets]]
name = "squares"

[[methods]]
name = "decode"

[[methods]]
name = "decode"
params = { shift = 1 }

[[methods]]
name = "learned-threshold"
budget = "standard"
"""


def _run(registry: Registry, tmp_path: Path, *args: str):  # type: ignore[no-untyped-def]
    registry.pm.hook.bench_register_commands(cli=cli)
    return CliRunner().invoke(cli, ["run", "--store", str(tmp_path / "runs"), "--quiet", *args], obj=registry)


def test_suite_file_runs_what_it_says_and_is_recorded(registry: Registry, tmp_path: Path) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    out = _run(registry, tmp_path, "--config", str(suite))
    assert out.exit_code == 0, out.output
    store = Store(tmp_path / "runs")
    run = store.run()
    assert run["suite"] == {"file": "suite.toml", "text": SUITE}
    assert run["seeds"] == [0, 1] and run["method_budgets"] == {"learned-threshold": "standard"}
    records = [store.cell(k) for k in run["cells"]]
    assert len(records) == 3 * 2 and {r["status"] for r in records} == {"done"}
    assert {(r["label"], r["seed"]) for r in records} == {(m, s) for m in ("decode", "decode(shift=1)",
                                                                         "learned-threshold") for s in (0, 1)}
    assert {r["budget"] for r in records if r["method"] == "learned-threshold"} == {"standard"}
    assert {r["budget"] for r in records if r["method"] == "decode"} == {"quick"}
    assert all(r["metrics"] == ["dice"] for r in records)
    # a shift of one column keeps 12 of 16 pixels of the 4x4 square and 2 of 4 of each 2x2 one
    shifted = [r for r in records if r["label"] == "decode(shift=1)"]
    assert all([row["values"]["dice"] for row in store.images(r["key"])] == [0.75, 0.5] for r in shifted)


def test_flags_given_override_the_file(registry: Registry, tmp_path: Path) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    out = _run(registry, tmp_path, "--config", str(suite), "--seeds", "7", "--methods", "decode")
    assert out.exit_code == 0, out.output
    run = Store(tmp_path / "runs").run()
    assert run["seeds"] == [7] and [m[0] for m in run["methods"]] == ["decode"]
    assert "method_budgets" not in run and len(run["cells"]) == 1
    assert run["budget"] == BUDGETS["quick"].as_dict()


@pytest.mark.parametrize(("text", "message"), [
    ("seeds = [0,\n", r"suite\.toml: not valid TOML"),
    ("colour = 1\n", r"suite\.toml: unknown key 'colour'; keys: budget, cell_timeout"),
    ("[[methods]]\nname = \"decod\"\n", r"suite\.toml: methods\[0\]: unknown method 'decod'.*did you mean 'decode'"),
    ("[[methods]]\nname = \"decode\"\nbudget = \"huge\"\n", r"methods\[0\]\.budget 'huge' is not a budget; choose from quick"),
    ("seeds = [\"a\"]\n", r"seeds must be a list of integers"),
    ("[[datasets]]\nparams = {}\n", r"datasets\[0\] needs a name"),
])
def test_mistakes_name_the_file_and_the_key(registry: Registry, tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "suite.toml"
    path.write_text(text)
    with pytest.raises(PluginError, match=message):
        load_suite(path, list(registry.datasets), list(registry.methods))
