"""Provenance names the code that measured, from the right source."""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path

import pytest

from harness import provenance
from harness.bench import build_leaderboard, run_benchmark
from harness.store import Store


class FakeDist:
    def __init__(self, text: str | None) -> None:
        self.text = text

    def read_text(self, name: str) -> str | None:
        assert name == "direct_url.json"
        return self.text


def test_a_vcs_install_reports_its_recorded_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    info = {"url": "https://example.org/segbench.git", "vcs_info": {"vcs": "git", "commit_id": "abc123"}}
    monkeypatch.setattr(provenance.metadata, "distribution", lambda name: FakeDist(json.dumps(info)))
    assert provenance.distribution_state() == {"commit": "abc123", "dirty": False}


def test_a_wheel_inside_a_users_repository_does_not_take_its_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a user's repository enclosing site-packages: no segbench pyproject there, no direct_url
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    fake_pkg = tmp_path / "site-packages" / "harness"
    fake_pkg.mkdir(parents=True)
    (fake_pkg / "__init__.py").write_text("")
    monkeypatch.setattr(provenance.harness, "__file__", str(fake_pkg / "__init__.py"))
    monkeypatch.setattr(provenance.metadata, "distribution", lambda name: FakeDist(None))
    assert provenance.git_state() == {"commit": None, "dirty": None}


def test_the_leaderboard_names_the_measuring_run_not_the_writer(registry, store: Store) -> None:  # type: ignore[no-untyped-def]
    result = run_benchmark(registry, [("squares", {})], [("decode", {})], [0], metrics=["dice"], store=store)
    path = store.run_path(result.run_id)
    manifest = json.loads(path.read_text())
    manifest["segbench"] = {"version": "0.0.1", "commit": "feedbeef", "dirty": True}
    manifest["date"] = "2020-01-02T03:04:05+00:00"
    path.write_text(json.dumps(manifest))
    _, _, prov = build_leaderboard(registry, store, store.run(result.run_id), "squares", metrics=["dice"])
    assert prov["segbench"] == {"version": "0.0.1", "commit": "feedbeef", "dirty": True}
    assert prov["date"] == "2020-01-02T03:04:05+00:00"
    assert prov["leaderboard_written"]["date"] != prov["date"]


def test_git_state_names_the_commit_and_whether_tracked_files_changed(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                              cwd=tmp_path, check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    assert provenance.git_state(tmp_path) == {"commit": None, "dirty": None}  # no commit yet
    (tmp_path / "a.txt").write_text("one\n")
    git("add", "a.txt")
    git("commit", "-q", "-m", "first")
    head = git("rev-parse", "HEAD")
    assert provenance.git_state(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "untracked.txt").write_text("not part of the code\n")
    assert provenance.git_state(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "a.txt").write_text("two\n")
    assert provenance.git_state(tmp_path) == {"commit": head, "dirty": True}


def test_the_machine_names_its_cpu_model(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n")
    assert provenance.cpu_model(str(cpuinfo)) == "AMD EPYC 7B13"
    # without /proc/cpuinfo (macOS, Windows) what platform knows, never an empty name
    assert provenance.cpu_model(str(tmp_path / "absent")) in {platform.processor(), platform.machine()}
    assert provenance.cpu_model(str(tmp_path / "absent"))
    info = provenance.machine()
    assert info["arch"] == platform.machine() and info["cpu"]
