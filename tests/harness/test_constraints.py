"""constraints.txt pins what must match exactly, and each pin satisfies the extras that need it."""

from __future__ import annotations

import sys
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def pins() -> dict[str, str]:
    out = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"constraints.txt: {line!r} is not an exact pin"
        out[canonicalize_name(req.name)] = spec.version
    return out


def extras() -> dict[str, list[Requirement]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {name: [Requirement(r) for r in reqs] for name, reqs in project["optional-dependencies"].items()}


def test_engines_and_torch_are_pinned() -> None:
    assert {"torch", "torchvision", "ray", "submitit"} <= set(pins())


@pytest.mark.parametrize("extra", ["deep", "ray", "slurm"])
def test_each_pin_satisfies_the_extras_requirement(extra: str) -> None:
    pinned = pins()
    for req in extras()[extra]:
        name = canonicalize_name(req.name)
        if name in pinned:
            assert req.specifier.contains(pinned[name]), f"extra {extra!r} asks {req}, constraints.txt pins {pinned[name]}"


@pytest.mark.parametrize("name", ["ray", "submitit", "torch", "torchvision"])
def test_the_installed_version_is_the_pinned_one(name: str) -> None:
    try:
        installed = metadata.version(name)
    except metadata.PackageNotFoundError:
        pytest.skip(f"{name} is not installed here")
    assert installed.split("+", 1)[0] == pins()[name], f"{name} {installed} is installed, constraints.txt pins {pins()[name]}"
