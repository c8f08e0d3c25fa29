"""What produced a result: code version, plugins, packages, machine, GPU, command, date."""

from __future__ import annotations

import datetime as dt
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
    """Commit and dirty flag of the checkout holding the harness (None outside a checkout)."""
    where = path or Path(harness.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def package_versions() -> dict[str, str]:
    out = {}
    for name in KEY_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu": platform.processor() or platform.machine(),
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
