"""The source code a plugin's results depend on, for cell keys.

A method's results depend on its own module and on every module of its distribution that the
module imports (a training engine, a decoding recipe, the metric used to select checkpoints).
:func:`source_digest` hashes the module that defines a class together with the modules of the
same top-level package it reaches through ``import`` statements, followed transitively,
including imports inside functions (the deep methods import lazily so that listing plugins
needs no PyTorch).  Statements are read with :mod:`ast`; nothing is imported to find them.

Rules:

- only modules of the defining module's top-level package are followed (``plugins`` for the
  built-ins, ``segbench_example`` for a third-party plugin); the harness and third-party
  libraries are keyed by version instead;
- a package passed through on the way to a module (``plugins.methods`` in
  ``from plugins.methods.deep.unet import UNet``) contributes its ``__init__.py`` but not what
  that file imports: a package that imports all its members would otherwise tie every member
  to every other;
- ``from package import name`` where ``name`` is not a submodule follows the package's
  ``__init__`` (that is where the name comes from).

Imports built from strings at run time (``importlib.import_module(x)``) are not seen.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

#: (path, size, mtime_ns) -> what one file's import statements name: (module, None) for
#: ``import module`` and (module, name) for ``from module import name``.
_PARSED: dict[tuple[str, int, int], list[tuple[str, str | None]]] = {}


def _module_file(name: str) -> Path | None:
    module = sys.modules.get(name)
    origin = getattr(module, "__file__", None) if module is not None else None
    if origin is None:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError, AttributeError):
            return None
        origin = spec.origin if spec is not None and spec.has_location else None
    if not origin or not str(origin).endswith(".py"):
        return None
    return Path(origin)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _resolve(name: str | None, level: int, importer: str, importer_is_package: bool) -> str:
    if not level:
        return name or ""
    base = importer if importer_is_package else importer.rpartition(".")[0]
    for _ in range(level - 1):
        base = base.rpartition(".")[0]
    return f"{base}.{name}" if name else base


def _imports(name: str, path: Path) -> list[tuple[str, str | None]]:
    """What one file imports, as absolute names: (module, None) for ``import module``,
    (module, name) for ``from module import name`` (``name`` a submodule or an attribute)."""
    stat = path.stat()
    cache_key = (str(path), stat.st_size, stat.st_mtime_ns)
    if cache_key in _PARSED:
        return _PARSED[cache_key]
    tree = ast.parse(path.read_bytes(), filename=str(path))
    found: list[tuple[str, str | None]] = []
    package = _is_package(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(node.module, node.level, name, package)
            found.extend((source, None if alias.name == "*" else alias.name) for alias in node.names)
    _PARSED[cache_key] = found
    return found


def source_files(module_name: str) -> dict[str, Path]:
    """Module name -> file of ``module_name`` and every module of its top-level package that
    it reaches (see the module docstring for the rules)."""
    root = module_name.split(".")[0]
    files: dict[str, Path] = {}
    passed: dict[str, Path] = {}  # packages only passed through: file hashed, imports not followed
    todo = [module_name]
    while todo:
        name = todo.pop()
        if name in files:
            continue
        path = _module_file(name)
        if path is None:
            continue
        files[name] = path
        parts = name.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            parent_file = _module_file(parent)
            if parent_file is not None:
                passed.setdefault(parent, parent_file)
        for source, attribute in _imports(name, path):
            if source.split(".")[0] != root:
                continue
            submodule = f"{source}.{attribute}" if attribute else None
            if submodule is not None and _is_module(submodule):
                todo.append(submodule)
            else:
                todo.append(source)  # ``import source``, or a name defined in its file
    for name, path in passed.items():
        files.setdefault(name, path)
    return files


def _is_module(name: str) -> bool:
    """Whether ``name`` is a module (and not an attribute of its parent).  Only a package's
    submodules can be found, so a plain module's parent is not imported to ask."""
    parent = name.rpartition(".")[0]
    parent_file = _module_file(parent) if parent else None
    if parent_file is not None and not _is_package(parent_file):
        return False
    return _module_file(name) is not None


def _display(name: str, path: Path) -> str:
    parts = name.split(".")
    tail = [*parts[:-1], path.name] if not _is_package(path) else [*parts, path.name]
    return "/".join(tail)


def source_digest(cls: Any) -> dict[str, Any]:
    """``{"sha256": …, "files": [...]}`` over the code a class's results depend on (its module
    and what that reaches, see above); ``files`` are paths relative to the package root."""
    module_name = getattr(cls, "__module__", None)
    files = source_files(module_name) if module_name else {}
    if not files:
        return {"sha256": None, "note": f"source of {module_name}.{getattr(cls, '__qualname__', cls)} not found"}
    entries = sorted((_display(name, path), path) for name, path in files.items())
    digest = hashlib.sha256()
    shown: list[str] = []
    for display, path in entries:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        shown.append(display)
        digest.update(display.encode() + b"\0" + hashlib.sha256(data).digest())
    return {"sha256": digest.hexdigest(), "files": shown}
