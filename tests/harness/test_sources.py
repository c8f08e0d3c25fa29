"""Which source files key a plugin's results (harness.sources), on a package made here."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from harness.sources import source_digest, source_files

FILES = {
    # a package that imports all its members, as plugins.methods.deep does
    "__init__.py": "from {p}.a import A\nfrom {p}.b import B\nLIMIT = 3\n",
    # a lazy import inside a method, as the deep methods do
    "a.py": "class A:\n    def run(self):\n        from {p}.helper import f\n        return f()\n",
    "b.py": "import json\n\nclass B:\n    pass\n",
    "helper.py": "from . import util\n\ndef f():\n    return util.g()\n",
    "util.py": "import numpy\n\ndef g():\n    return 1\n",
    # a name taken from the package itself: the package's __init__ and what it imports
    "c.py": "from {p} import LIMIT\n\nclass C:\n    pass\n",
}


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    name = f"srcpkg_{request.node.name.replace('[', '_').replace(']', '_')}"
    root = tmp_path / name
    root.mkdir()
    for file, text in FILES.items():
        (root / file).write_text(text.format(p=name))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, root
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


def test_a_class_is_keyed_by_the_modules_it_reaches(package) -> None:  # type: ignore[no-untyped-def]
    name, _ = package
    a = importlib.import_module(f"{name}.a").A
    # a.py, the lazy import of helper, helper's relative import of util, and the package's
    # __init__ passed on the way (its own imports of a and b are not followed); never b.py,
    # numpy or json
    assert source_digest(a)["files"] == [f"{name}/{f}" for f in ("__init__.py", "a.py", "helper.py", "util.py")]
    c = importlib.import_module(f"{name}.c").C
    # ``from package import LIMIT``: LIMIT lives in __init__, which imports a and b
    assert sorted(source_files(c.__module__)) == sorted(
        [name, f"{name}.a", f"{name}.b", f"{name}.c", f"{name}.helper", f"{name}.util"]
    )


def test_editing_an_imported_module_changes_the_digest(package) -> None:  # type: ignore[no-untyped-def]
    name, root = package
    a = importlib.import_module(f"{name}.a").A
    before = source_digest(a)["sha256"]
    (root / "b.py").write_text("class B:\n    changed = True\n")  # not reached from a.py
    assert source_digest(a)["sha256"] == before
    (root / "util.py").write_text("def g():\n    return 2\n")  # reached through helper.py
    after = source_digest(a)["sha256"]
    assert after != before
    (root / "util.py").write_text(FILES["util.py"])
    assert source_digest(a)["sha256"] == before


def test_a_built_in_deep_method_is_keyed_by_its_recipe_not_by_its_siblings() -> None:
    from plugins.methods.deep import UNet

    files = source_digest(UNet)["files"]
    assert "plugins/methods/deep/recipe.py" in files  # decoding and selection
    assert "plugins/metrics/glas.py" in files  # the selection metric
    assert "plugins/methods/deep/mask_rcnn.py" not in files
    assert "plugins/methods/deep/unet_plus_plus.py" not in files
