"""What produced a result: code version, plugins, packages, machine, GPU, command, date."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

import harness
from harness.plugins import Registry

KEY_PACKAGES = (
    "numpy", "scipy", "scikit-image", "scikit-learn", "opencv-python-headless", "pillow",
    "pluggy", "torch", "torchvision", "timm", "transformers", "safetensors",
)


def git_state(path: Path | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the code that is running.

    From a source checkout (the folder above ``harness/`` holds segbench's ``pyproject.toml``)
    git answers; for an installed distribution its own metadata does (``direct_url.json``: the
    VCS commit of a ``pip install git+…``, or git in the source folder of an editable install),
    never whatever repository happens to enclose the installation.
    """
    if path is not None:
        return _git(path)
    where = Path(harness.__file__).resolve().parent.parent
    if _is_segbench_checkout(where):
        return _git(where)
    return distribution_state()


def _is_segbench_checkout(where: Path) -> bool:
    try:
        text = (where / "pyproject.toml").read_text()
    except OSError:
        return False
    return 'name = "segbench"' in text and (where / "harness" / "__init__.py").is_file()


def distribution_state(name: str = "segbench") -> dict[str, Any]:
    """Commit and dirty flag from an installed distribution's ``direct_url.json`` (PEP 610)."""
    try:
        raw = metadata.distribution(name).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        raw = None
    if not raw:
        return {"commit": None, "dirty": None}
    try:
        info = json.loads(raw)
    except ValueError:
        return {"commit": None, "dirty": None}
    vcs = info.get("vcs_info") or {}
    if vcs.get("commit_id"):
        return {"commit": vcs["commit_id"], "dirty": False}
    url = str(info.get("url", ""))
    if (info.get("dir_info") or {}).get("editable") and url.startswith("file://"):
        source = Path(url[len("file://"):])
        if _is_segbench_checkout(source):
            return _git(source)
    return {"commit": None, "dirty": None}


def _git(where: Path) -> dict[str, Any]:
    """Commit and dirty flag from one ``git status`` (its v2 header names the commit)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
                             cwd=where, capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    lines = out.splitlines()
    commit = next((line.split()[2] for line in lines if line.startswith("# branch.oid ")), None)
    if commit is None or commit == "(initial)":  # no commit yet
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": any(line and not line.startswith("#") for line in lines)}


def package_versions() -> dict[str, str]:
    """Versions of the packages that matter to results (read once per process: scanning the
    installed distributions costs about 30 ms)."""
    return dict(_package_versions())


@functools.lru_cache(maxsize=1)
def _package_versions() -> dict[str, str]:
    out = {}
    for name in KEY_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name as the kernel reports it ("AMD EPYC 7B13"), else what ``platform``
    knows (often only the architecture)."""
    try:
        with open(cpuinfo) as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "cpu_count": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "gpu": None,
    }
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def plugins(registry: Registry) -> list[dict[str, Any]]:
    return [e.describe() for e in registry.entries()]


def provenance(registry: Registry, **extra: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "segbench": {"version": harness.__version__, **git_state()},
        "plugins": plugins(registry),
        "packages": package_versions(),
        "machine": machine(),
        "command": " ".join(["bench", *sys.argv[1:]]) if sys.argv else "",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }
