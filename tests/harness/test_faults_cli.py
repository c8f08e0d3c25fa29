"""What the CLI prints when it goes to a file or pipe: names in tables are never cut, errors are
never hard-wrapped, and an unwritable store or leaderboard folder is one line naming it."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from harness import Method, Prediction, hookimpl
from harness.cli import cli, main
from harness.plugins import Registry, Source, build_registry

LONG = "an-extraordinarily-long-method-name-that-a-user-has-to-type-exactly-as-listed-" + "x" * 40
LONG_DIST = "acme-" + "very-long-distribution-name-" * 3
TINY = "synthetic(n_train=0,n_validation=0,n_test=1,height=32,width=32,n_objects=2)"


class LongName(Method):
    name = LONG
    outputs = frozenset({"foreground"})
    description = "a method whose name is longer than a terminal line " * 2

    def __init__(self) -> None:
        pass

    def predict(self, image: np.ndarray) -> Prediction:
        return Prediction(foreground=np.zeros(image.shape[:2], dtype=bool))


class _Plugin:
    @hookimpl
    def bench_register_methods(self, register):  # type: ignore[no-untyped-def]
        register(LongName)


@pytest.fixture
def long_registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.delenv("BENCH_PLUGINS", raising=False)
    monkeypatch.delenv("BENCH_DISABLE_PLUGINS", raising=False)
    monkeypatch.setenv("COLUMNS", "80")  # what a pipe gets when nothing says otherwise
    registry = build_registry(extra_plugins=[(_Plugin(), Source("acme.long_entry_point_" + "y" * 30, LONG_DIST, "1"))],
                              warn=False)
    registry.pm.hook.bench_register_commands(cli=cli)
    return registry


@pytest.mark.parametrize("args", [["plugins"], ["list", "methods"]])
def test_piped_tables_keep_every_name_whole(long_registry: Registry, args: list[str]) -> None:
    result = CliRunner().invoke(cli, args, obj=long_registry, catch_exceptions=False)
    assert result.exit_code == 0
    [line] = [row for row in result.output.splitlines() if LONG in row]  # one row, the name unbroken
    assert LONG_DIST in line and "…" not in line
    if args == ["plugins"]:
        assert "acme.long_entry_point_" + "y" * 30 in line
    for name in ("otsu", "kmeans"):  # the other rows are intact too
        assert any(f"│ {name} " in row for row in result.output.splitlines())


def test_run_messages_are_not_hard_wrapped(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / ("a-store-folder-with-a-long-name-" * 3) / "runs"
    result = invoke("run", "--datasets", "squares", "--methods", "decode,crash", "--metrics", "dice",
                    "--quiet", "--store", str(store))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    failed = [line for line in lines if line.startswith("error: ")]
    assert len(failed) == 1 and str(store) in failed[0] and failed[0].endswith("(pass --allow-errors to exit 0 anyway)")
    assert any(line.startswith("run ") and str(store) in line and line.endswith("writes the versioned leaderboard")
               for line in lines)


def _refuse_under(monkeypatch: pytest.MonkeyPatch, folder: Path, code: int, reason: str) -> None:
    """Fault injection: creating anything below ``folder`` fails as on a read-only folder."""
    real_mkdir, real_open = os.mkdir, os.open

    def refused(path: os.PathLike[str] | str) -> bool:
        return Path(path).resolve().is_relative_to(folder.resolve()) and Path(path).resolve() != folder.resolve()

    def mkdir(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if refused(path):
            raise OSError(code, reason, str(path)) if code != errno.EACCES else PermissionError(code, reason, str(path))
        return real_mkdir(path, *args, **kwargs)

    def open_(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        if refused(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(code, reason, str(path)) if code != errno.EACCES else PermissionError(code, reason, str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)


def _error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_unwritable_store_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    _refuse_under(monkeypatch, locked, errno.EACCES, "Permission denied")
    with pytest.raises(SystemExit) as exited:
        main(["run", "--methods", "otsu", "--datasets", TINY, "--metrics", "dice", "--quiet",
              "--store", str(locked / "runs")])
    assert exited.value.code == 2
    [line] = _error_lines(capsys)
    assert line.startswith(f"error: cannot write {locked / 'runs'}")
    assert line.endswith(": Permission denied; check the folder's permissions")


def test_unwritable_leaderboard_folder_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "runs"
    main(["run", "--methods", "otsu", "--datasets", TINY, "--metrics", "dice", "--quiet", "--store", str(store)])
    capsys.readouterr()
    out = tmp_path / "readonly"
    out.mkdir()
    _refuse_under(monkeypatch, out, errno.EROFS, "Read-only file system")
    with pytest.raises(SystemExit) as exited:
        main(["leaderboard", "--store", str(store), "--metrics", "dice", "--bootstrap", "0",
              "--out", str(out / "leaderboards")])
    assert exited.value.code == 2
    [line] = _error_lines(capsys)
    assert line.startswith(f"error: cannot write {out / 'leaderboards'}")
    assert line.endswith(": Read-only file system; choose another folder or free space there")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="file modes do not bind root")
def test_read_only_folder_for_real(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(SystemExit) as exited:
            main(["run", "--methods", "otsu", "--datasets", TINY, "--metrics", "dice", "--quiet",
                  "--store", str(locked / "runs")])
    finally:
        locked.chmod(0o755)
    assert exited.value.code == 2
    [line] = _error_lines(capsys)
    assert line.startswith(f"error: cannot write {locked / 'runs'}") and "Permission denied" in line
