"""Broken plugins, installed for real into a temporary path: each is skipped with a warning
naming its distribution, recorded as a load failure, and everything else keeps working."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from importlib import metadata
from pathlib import Path

import pytest

from harness import Method, hookimpl
from harness.plugins import PluginLoadWarning, Source, build_registry

ROOT = Path(__file__).resolve().parents[2]

PLUGIN = '''
from harness import Method, MetricSpec, hookimpl

class {cls}(Method):
    name = "{name}"
    outputs = frozenset({{"foreground"}})
    {body}
    def predict(self, image):
        raise NotImplementedError

@hookimpl
def bench_register_methods(register):
    {register}
'''

CASES = {
    # a class without an explicit __init__ has no declared parameters
    "no_init": dict(cls="NoInit", name="no-init", body="", register="register(NoInit)"),
    "kwargs": dict(
        cls="Kw", name="kw", body="def __init__(self, **kw): pass\n", register="register(Kw)"
    ),
    "raises": dict(
        cls="Ok", name="ok-one", body="def __init__(self): pass\n",
        register="register(Ok); raise RuntimeError('registration blew up')",
    ),
    "clash": dict(
        cls="Otsu", name="otsu", body="def __init__(self): pass\n", register="register(Otsu)"
    ),
}


def install(site: Path, dist: str, module: str, source: str) -> None:
    """A distribution in ``site`` as pip would leave it: module plus dist-info entry point."""
    (site / f"{module}.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[segbench]\n{module} = {module}\n")


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    for case, fields in CASES.items():
        body = textwrap.indent(fields["body"], "    ").strip()
        install(site, f"acme-{case}", f"acme_{case}", PLUGIN.format(**{**fields, "body": body}))
    # a hook name nobody specified: reported rather than silently ignored
    install(site, "acme-typo", "acme_typo", textwrap.dedent('''
        from harness import hookimpl

        @hookimpl
        def bench_register_method(register):
            pass
    '''))
    return site


def test_broken_plugins_are_skipped_one_by_one(broken_site: Path) -> None:
    sys.path.insert(0, str(broken_site))
    try:
        eps = list(metadata.entry_points(group="segbench"))  # now with the temporary path
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            registry = build_registry(entry_points=eps, env={})
    finally:
        sys.path.remove(str(broken_site))
    failed = {f.distribution: f.error for f in registry.failures}
    assert set(failed) == {"acme-no_init", "acme-kwargs", "acme-raises", "acme-clash", "acme-typo"}
    assert "registration blew up" in failed["acme-raises"]
    assert "'otsu' is registered twice" in failed["acme-clash"]
    assert "bench_register_method" in failed["acme-typo"]
    assert all("BENCH_DISABLE_PLUGINS=" in error for error in failed.values())
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginLoadWarning)]
    assert len(messages) == 5 and all("distribution 'acme-" in m for m in messages)
    assert "ok-one" not in registry.methods  # nothing of a failed plugin is kept
    assert registry.get("method", "otsu").source.builtin and "dice" in registry.metrics


def test_cli_help_and_plugins_survive_broken_plugins(broken_site: Path) -> None:
    env = {"PYTHONPATH": f"{broken_site}:{ROOT}", "PATH": "/usr/bin:/bin"}
    code = "from harness.cli import main; main()"

    def bench(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code, *args], cwd=ROOT, env=env, text=True,
            capture_output=True, timeout=120,
        )

    helped = bench("--help")
    assert helped.returncode == 0, helped.stderr
    assert "acme-raises" in helped.stderr and "skipped" in helped.stderr
    listed = bench("plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    payload = json.loads(listed.stdout)
    assert {f["distribution"] for f in payload["failed"]} >= {"acme-clash", "acme-kwargs"}
    assert any(p["name"] == "otsu" and p["builtin"] for p in payload["plugins"])


def test_registration_goes_through_pluggy() -> None:
    class Fine(Method):
        name = "fine"
        outputs = frozenset({"foreground"})

        def __init__(self) -> None:
            pass

        def predict(self, image):  # type: ignore[no-untyped-def]
            raise NotImplementedError

    class Plugins:
        @hookimpl(specname="bench_register_methods")
        def any_name(self, register):  # type: ignore[no-untyped-def]
            register(Fine)

        def bench_register_metrics(self, register):  # type: ignore[no-untyped-def]
            raise AssertionError("an unmarked function is no hook")

    registry = build_registry(env={}, warn=False, extra_plugins=[(Plugins(), Source("p", "p", "1"))])
    assert registry.failures == [] and registry.get("method", "fine").source.distribution == "p"
