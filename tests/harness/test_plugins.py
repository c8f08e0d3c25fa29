"""Entry-point loading, selection, validation and error messages of the registry."""

from __future__ import annotations

import warnings
from importlib import metadata

import pytest

from harness import MetricSpec, hookimpl
from harness.plugins import PluginLoadWarning, Source, build_registry
from harness.types import PluginError
from tests.conftest import FakePlugin


def test_builtins_come_from_our_own_entry_points() -> None:
    registry = build_registry(env={}, warn=False)
    for kind, name in (("dataset", "dsb2018-sample"), ("dataset", "synthetic"), ("method", "otsu"), ("metric", "dice")):
        entry = registry.get(kind, name)
        assert entry.source.distribution == "segbench" and entry.source.builtin
        assert entry.source.entry_point in {ep.name for ep in metadata.entry_points(group="segbench")}


def test_a_broken_plugin_is_reported_once_and_the_others_load() -> None:
    eps = list(metadata.entry_points(group="segbench")) + [
        metadata.EntryPoint(name="broken", value="no_such_module_for_segbench", group="segbench")
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = build_registry(entry_points=eps, env={})
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginLoadWarning)]
    assert len(messages) == 1 and "'broken'" in messages[0] and "No module named" in messages[0]
    assert [f.entry_point for f in registry.failures] == ["broken"]
    assert "otsu" in registry.methods


def test_block_list_and_allow_list_select_plugins() -> None:
    blocked = build_registry(env={"BENCH_DISABLE_PLUGINS": "otsu"}, warn=False)
    assert "otsu" not in blocked.methods and "dice" in blocked.metrics
    by_entry_point = build_registry(env={"BENCH_DISABLE_PLUGINS": "metrics.pixel"}, warn=False)
    assert "dice" not in by_entry_point.metrics
    allowed = build_registry(env={"BENCH_PLUGINS": "otsu,dice,synthetic"}, warn=False)
    assert set(allowed.methods) == {"otsu"} and set(allowed.metrics) == {"dice"}
    assert set(allowed.datasets) == {"synthetic"}


def test_name_clash_names_both_sources_and_skips_the_second() -> None:
    registry = build_registry(env={}, warn=False, extra_plugins=[
        (FakePlugin(), Source("tests.fakes", "tests", "0")),
        (FakePlugin(), Source("other.fakes", "other", "1")),
    ])
    (failure,) = registry.failures
    assert failure.distribution == "other"
    assert "registered twice: by tests" in failure.error and "and by other" in failure.error
    assert registry.get("method", "decode").source.distribution == "tests"


def test_invalid_records_are_rejected_with_their_source() -> None:
    class BadName:
        @hookimpl
        def bench_register_metrics(self, register):  # type: ignore[no-untyped-def]
            register(MetricSpec(name="Bad Name", higher_is_better=True, statistics=lambda p: {"value": 1.0}))

    registry = build_registry(env={}, warn=False, extra_plugins=[(BadName(), Source("acme.metrics", "acme", "1"))])
    (failure,) = registry.failures
    assert failure.distribution == "acme" and "name 'Bad Name' must be lowercase" in failure.error

    class NotAMethod:
        @hookimpl
        def bench_register_methods(self, register):  # type: ignore[no-untyped-def]
            register(object)

    registry = build_registry(env={}, warn=False, extra_plugins=[(NotAMethod(), Source("acme.m", "acme", "1"))])
    assert "expected a subclass of harness.Method" in registry.failures[0].error
    assert "otsu" in registry.methods


def test_unknown_names_list_installed_ones_and_the_closest(registry) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PluginError) as info:
        registry.method("otsuu")
    message = str(info.value)
    assert "unknown method 'otsuu'" in message and "did you mean 'otsu'?" in message
    assert "decode" in message and "bench list methods" in message
    with pytest.raises(PluginError, match="has no parameter colour; parameters: channel, polarity"):
        registry.method("otsu", colour="red")


def test_method_parameters_must_be_explicit_keywords() -> None:
    from harness import Method

    class Sloppy(Method):
        name = "sloppy"

        def __init__(self, **kwargs):  # type: ignore[no-untyped-def]
            self.kwargs = kwargs

        def predict(self, image):  # type: ignore[no-untyped-def]
            raise NotImplementedError

    with pytest.raises(TypeError, match="explicit keyword"):
        Sloppy.param_names()


#: Packages whose import costs tenths of a second each (measured with ``python -X importtime``):
#: building the registry, or listing methods, must not pay for them; the methods and metrics
#: that use them import them where they use them.
HEAVY_AT_REGISTRY_TIME = ("sklearn", "scipy.stats", "torch", "torchvision")

_IMPORTED_HEAVY = (
    "import sys\n"
    "{body}\n"
    f"print('heavy:' + ','.join(m for m in {HEAVY_AT_REGISTRY_TIME!r} if m in sys.modules))\n"
)


def _heavy_modules_after(body: str) -> list[str]:
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", _IMPORTED_HEAVY.format(body=body)], cwd=root,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("heavy:"), done.stdout
    return [m for m in last.removeprefix("heavy:").split(",") if m]


def test_building_the_registry_imports_no_heavy_package() -> None:
    body = ("from harness.plugins import build_registry\n"
            "registry = build_registry(warn=False)\n"
            "assert 'kmeans' in registry.methods and 'unet' in registry.methods, sorted(registry.methods)\n"
            "registry.method('kmeans'); registry.method('random_forest')")
    assert _heavy_modules_after(body) == []


def test_bench_list_methods_imports_no_heavy_package() -> None:
    body = ("import contextlib, io\n"
            "from harness.cli import main\n"
            "sys.argv = ['bench', 'list', 'methods']\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    try:\n"
            "        main()\n"
            "    except SystemExit as exc:\n"
            "        assert not exc.code, exc.code\n"
            "assert 'meanshift' in out.getvalue(), out.getvalue()")
    assert _heavy_modules_after(body) == []


def test_the_guard_sees_a_heavy_import() -> None:
    """The two tests above would notice sklearn: importing a method's fit path loads it."""
    body = "from sklearn.cluster import KMeans"
    assert "sklearn" in _heavy_modules_after(body)
