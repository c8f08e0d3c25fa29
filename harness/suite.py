"""Suite files: one TOML file that says what ``bench run`` runs, so anyone re-runs it.

::

    seeds = [0, 1, 2]
    budget = "standard"
    metrics = ["dice", "aji"]          # optional: every applicable metric by default
    executor = "ray"                   # optional, with its options
    executor_options = { address = "auto" }

    [[datasets]]
    name = "glas"

    [[datasets]]
    name = "synthetic"
    params = { n_test = 20, height = 256, width = 256 }

    [[methods]]
    name = "otsu"
    params = { min_size = 20 }

    [[methods]]
    name = "unet"
    budget = "full"                    # this method's own budget

Command-line flags given explicitly override the file.  The file's text is recorded in the
run manifest (``suite``), so a stored run says exactly what produced it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.types import BUDGETS, PluginError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

TOP_KEYS = {"datasets", "methods", "seeds", "metrics", "budget", "executor", "executor_options", "jobs",
            "cell_timeout", "device"}
ENTRY_KEYS = {"dataset": {"name", "params"}, "method": {"name", "params", "budget"}}


@dataclass
class Suite:
    path: Path
    text: str
    datasets: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    methods: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    method_budgets: dict[int, str] = field(default_factory=dict)  # index into methods → budget
    settings: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        return {"file": self.path.name, "text": self.text}


def load_suite(path: str | Path, known_datasets: Sequence[str], known_methods: Sequence[str]) -> Suite:
    """Read and check a suite file; every mistake names the file, the key and the fix."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise PluginError(f"suite file {path}: cannot read it ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PluginError(f"suite file {path}: not valid TOML ({exc})") from None
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise PluginError(f"suite file {path}: unknown key {unknown[0]!r}; keys: {', '.join(sorted(TOP_KEYS))}")
    suite = Suite(path=path, text=text)
    suite.datasets = [_entry(path, "dataset", i, e, known_datasets)[:2] for i, e in enumerate(_list(path, data, "datasets"))]
    for i, item in enumerate(_list(path, data, "methods")):
        name, params, budget = _entry(path, "method", i, item, known_methods)
        if budget is not None:
            suite.method_budgets[len(suite.methods)] = budget
        suite.methods.append((name, params))
    if "seeds" in data:
        seeds = data["seeds"]
        if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
            raise PluginError(f"suite file {path}: seeds must be a list of integers, e.g. seeds = [0, 1, 2]")
    if "budget" in data:
        _budget(path, "budget", data["budget"])
    if "metrics" in data and not (isinstance(data["metrics"], list) and all(isinstance(m, str) for m in data["metrics"])):
        raise PluginError(f"suite file {path}: metrics must be a list of names, e.g. metrics = [\"dice\"]")
    if "executor_options" in data and not isinstance(data["executor_options"], Mapping):
        raise PluginError(f"suite file {path}: executor_options must be a table, e.g. executor_options = {{ address = \"auto\" }}")
    suite.settings = {k: v for k, v in data.items() if k not in ("datasets", "methods")}
    return suite


def _list(path: Path, data: Mapping[str, Any], key: str) -> list[Any]:
    items = data.get(key, [])
    if not isinstance(items, list):
        raise PluginError(f"suite file {path}: {key} must be an array of tables ([[{key}]] with a name)")
    return items


def _budget(path: Path, where: str, value: Any) -> str:
    if value not in BUDGETS:
        raise PluginError(f"suite file {path}: {where} {value!r} is not a budget; choose from {', '.join(BUDGETS)}")
    return str(value)


def _entry(path: Path, kind: str, index: int, item: Any, known: Sequence[str]) -> tuple[str, dict[str, Any], str | None]:
    where = f"{kind}s[{index}]"
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, Mapping) or "name" not in item:
        raise PluginError(f"suite file {path}: {where} needs a name, e.g. {{ name = \"...\" }}")
    extra = sorted(set(item) - ENTRY_KEYS[kind])
    if extra:
        raise PluginError(f"suite file {path}: {where} has unknown key {extra[0]!r}; "
                          f"keys: {', '.join(sorted(ENTRY_KEYS[kind]))}")
    name = item["name"]
    if name not in known:
        from harness.plugins import unknown_message

        raise PluginError(f"suite file {path}: {where}: {unknown_message(kind, str(name), known)}")
    params = item.get("params", {})
    if not isinstance(params, Mapping):
        raise PluginError(f"suite file {path}: {where}.params must be a table, e.g. params = {{ key = 1 }}")
    budget = _budget(path, f"{where}.budget", item["budget"]) if "budget" in item else None
    return str(name), dict(params), budget
