"""Executors are plugins: the built-in ones and a third party's register through one hook, and
``bench run --executor`` accepts exactly what is registered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from harness import hookimpl
from harness.bench import run_benchmark
from harness.cli import cli
from harness.executors import Executor
from harness.plugins import Registry, Source, build_registry
from harness.runner import CellSpec, execute_cell
from harness.store import Store
from harness.types import PluginError
from tests.conftest import FAKE, FakePlugin

THIRD = Source(entry_point="reverse", distribution="segbench-reverse-executor", version="0.1")


class ReverseExecutor(Executor):
    """A third party's executor: runs the queued cells last-first and logs what it did."""

    name = "reverse"
    description = "runs cells last-first (test fixture)"
    options: ClassVar[dict[str, str]] = {"tag": "a label kept in the log"}
    log: ClassVar[list[tuple[str, Any]]] = []

    def as_completed(self) -> Iterator[tuple[CellSpec, dict[str, Any]]]:
        self.log.append(("options", dict(self.settings)))
        while self._pending and not self._cancelled:
            cell = self._pending.pop()
            self.log.append(("run", cell.key))
            yield cell, execute_cell(cell, self.store_root, self.registry)

    def cancel(self) -> None:
        self.log.append(("cancel", len(self._pending)))
        super().cancel()


class ReversePlugin:
    @hookimpl
    def bench_register_executors(self, register):  # type: ignore[no-untyped-def]
        register(ReverseExecutor)


@pytest.fixture
def reg(monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.delenv("BENCH_PLUGINS", raising=False)
    monkeypatch.delenv("BENCH_DISABLE_PLUGINS", raising=False)
    ReverseExecutor.log.clear()
    return build_registry(extra_plugins=[(FakePlugin(), FAKE), (ReversePlugin(), THIRD)], warn=False)


def test_builtin_and_third_party_executors_come_from_the_same_hook(reg: Registry) -> None:
    entries = {name: e for name, e in reg.executors.items()}
    assert {"local", "process", "reverse"} <= set(entries)
    assert entries["local"].source.builtin and entries["process"].source.builtin
    assert entries["local"].source.entry_point == "commands.core"
    assert entries["reverse"].source.distribution == "segbench-reverse-executor"
    assert not entries["reverse"].source.builtin
    listed = {(e.kind, e.name) for e in reg.entries()}
    assert ("executor", "reverse") in listed and ("executor", "local") in listed


def test_third_party_executor_runs_a_sweep_like_the_local_one(reg: Registry, tmp_path: Path) -> None:
    args = ([("squares", {})], [("decode", {}), ("decode", {"shift": 1})], [0, 1])
    local = run_benchmark(reg, *args, metrics=["dice"], store=Store(tmp_path / "a"))
    mine = run_benchmark(reg, *args, metrics=["dice"], store=Store(tmp_path / "b"), executor="reverse",
                         executor_options={"tag": "x"})
    keys = [c.key for c in mine.cells]
    assert ReverseExecutor.log == [("options", {"tag": "x"}), *[("run", k) for k in reversed(keys)]]
    assert mine.counts() == local.counts() == {"done": 4}
    # shift 0 decodes perfectly (dice 1); shift 1 moves each square one column: a 4x4 square
    # keeps 12 of 16 pixels (dice 0.75) and each 2x2 square 2 of 4 (dice 0.5)
    for cell in mine.cells:
        a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
        values = [r["values"]["dice"] for r in b.images(cell.key)]
        assert values == [r["values"]["dice"] for r in a.images(cell.key)]
        assert values == ([1.0, 1.0] if cell.method_params["shift"] == 0 else [0.75, 0.5])
    assert Store(tmp_path / "b").run(mine.run_id)["executor_options"] == {"tag": "x"}


def test_unknown_executor_and_unknown_option_fail_before_anything_is_written(reg: Registry, tmp_path: Path) -> None:
    store = Store(tmp_path / "runs")
    with pytest.raises(PluginError, match=r"unknown executor 'revrese'.*did you mean 'reverse'"):
        run_benchmark(reg, [("squares", {})], [("decode", {})], store=store, executor="revrese")
    with pytest.raises(PluginError, match=r"executor 'reverse' has no option 'colour'; its options: tag"):
        run_benchmark(reg, [("squares", {})], [("decode", {})], store=store, executor="reverse",
                      executor_options={"colour": "red"})
    assert not (tmp_path / "runs").exists()


def test_interrupted_sweep_cancels_the_executor(reg: Registry, tmp_path: Path) -> None:
    seen = []

    def on_event(kind: str, cell: CellSpec, record: Any) -> None:
        if kind == "finished":
            seen.append(cell.key)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_benchmark(reg, [("squares", {})], [("decode", {})], [0, 1, 2], metrics=["dice"],
                      store=Store(tmp_path / "runs"), executor="reverse", on_event=on_event)
    assert ("cancel", 2) in ReverseExecutor.log  # the two cells not yet started were dropped
    assert len(seen) == 1 and len(list(Store(tmp_path / "runs").all_cell_keys())) == 1


def test_a_registered_executor_that_is_no_executor_is_a_load_failure() -> None:
    class Wrong:
        name = "wrong"

    class Bad:
        @hookimpl
        def bench_register_executors(self, register):  # type: ignore[no-untyped-def]
            register(Wrong)

    registry = build_registry(extra_plugins=[(Bad(), Source("bad", "bad-dist", "1"))], warn=False)
    (failure,) = registry.failures
    assert failure.distribution == "bad-dist"
    assert "expected a subclass of harness.executors.Executor" in failure.error
    assert "wrong" not in registry.executors and "local" in registry.executors


def _invoke(reg: Registry, tmp_path: Path, *args: str) -> Any:
    reg.pm.hook.bench_register_commands(cli=cli)
    return CliRunner().invoke(cli, ["run", "--store", str(tmp_path / "runs"), "--quiet", *args], obj=reg)


def test_cli_executor_choices_come_from_the_registry(reg: Registry, tmp_path: Path) -> None:
    ok = _invoke(reg, tmp_path, "--datasets", "squares", "--methods", "decode", "--metrics", "dice",
                 "--executor", "reverse", "-X", "tag=7")
    assert ok.exit_code == 0, ok.output
    assert ReverseExecutor.log[0] == ("options", {"tag": 7})
    bad = _invoke(reg, tmp_path, "--datasets", "squares", "--methods", "decode", "--executor", "revers")
    assert bad.exit_code == 2 and "unknown executor 'revers'" in bad.output and "'reverse'" in bad.output
    stray = _invoke(reg, tmp_path, "--datasets", "squares", "--methods", "decode", "--executor", "local",
                    "--slurm-partition", "gpu")
    assert stray.exit_code == 2 and "--slurm-partition applies to --executor slurm, not 'local'" in stray.output


def test_cluster_executors_without_their_engine_name_the_extra(reg: Registry, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("ray", "submitit") else real(name, *a))
    with pytest.raises(PluginError, match=r"the ray executor needs Ray: pip install 'segbench\[ray\]'"):
        run_benchmark(reg, [("squares", {})], [("decode", {})], store=Store(tmp_path), executor="ray")
    with pytest.raises(PluginError, match=r"the slurm executor needs submitit: pip install 'segbench\[slurm\]'"):
        run_benchmark(reg, [("squares", {})], [("decode", {})], store=Store(tmp_path), executor="slurm",
                      executor_options={"partition": "gpu"})
    assert not any(tmp_path.iterdir())
