"""Plugin manager factory and the registry of datasets, methods and metrics.

Entry points of the group ``segbench`` are loaded one by one, built-ins exactly like
third-party packages, so one broken plugin is a warning naming its distribution and the others
still load.  ``BENCH_PLUGINS`` (allow-list) and ``BENCH_DISABLE_PLUGINS`` (block-list) take
comma-separated entry-point names, distribution names or plugin names.
"""

from __future__ import annotations

import difflib
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Literal

import pluggy

from harness import hookspecs
from harness import params as annotated
from harness.types import Dataset, Method, MetricSpec, PluginError

ENTRY_POINT_GROUP = "segbench"
OWN_DISTRIBUTION = "segbench"
Kind = Literal["dataset", "method", "metric", "executor"]
KINDS: tuple[Kind, ...] = ("dataset", "method", "metric", "executor")
_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")


class PluginLoadWarning(UserWarning):
    """A plugin's entry point failed to import; the others still load."""


@dataclass(frozen=True)
class Source:
    """Where a plugin came from."""

    entry_point: str
    distribution: str
    version: str

    @property
    def builtin(self) -> bool:
        return self.distribution == OWN_DISTRIBUTION


@dataclass(frozen=True)
class Entry:
    kind: Kind
    name: str
    obj: Any
    source: Source

    @property
    def version(self) -> str:
        return str(getattr(self.obj, "version", "1"))

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "distribution": self.source.distribution,
            "distribution_version": self.source.version,
            "entry_point": self.source.entry_point,
            "builtin": self.source.builtin,
        }


@dataclass
class LoadFailure:
    entry_point: str
    distribution: str
    error: str


@dataclass
class Registry:
    """Everything the plugins registered, with where each came from."""

    datasets: dict[str, Entry] = field(default_factory=dict)
    methods: dict[str, Entry] = field(default_factory=dict)
    metrics: dict[str, Entry] = field(default_factory=dict)
    executors: dict[str, Entry] = field(default_factory=dict)
    failures: list[LoadFailure] = field(default_factory=list)
    pm: pluggy.PluginManager | None = None

    def table(self, kind: Kind) -> dict[str, Entry]:
        return {"dataset": self.datasets, "method": self.methods, "metric": self.metrics,
                "executor": self.executors}[kind]

    def add(self, kind: Kind, obj: Any, source: Source) -> None:
        name = getattr(obj, "name", None)
        label = f"{kind} from {source.distribution} (entry point {source.entry_point!r})"
        _validate(kind, obj, label)
        if not isinstance(name, str) or not _NAME.match(name):
            raise PluginError(
                f"{label}: name {name!r} must be lowercase letters, digits, '_' or '-', "
                "starting with a letter"
            )
        table = self.table(kind)
        if name in table:
            other = table[name].source
            raise PluginError(
                f"{kind} name {name!r} is registered twice: by {other.distribution} "
                f"(entry point {other.entry_point!r}) and by {source.distribution} "
                f"(entry point {source.entry_point!r}); uninstall or disable one "
                "(BENCH_DISABLE_PLUGINS)"
            )
        table[name] = Entry(kind, name, obj, source)

    def get(self, kind: Kind, name: str) -> Entry:
        table = self.table(kind)
        if name in table:
            return table[name]
        raise PluginError(unknown_message(kind, name, table))

    def dataset(self, name: str, **params: Any) -> Dataset:
        cls = self.get("dataset", name).obj
        check_params("dataset", name, cls, params)
        return cls(**params)  # type: ignore[no-any-return]

    def method(self, name: str, **params: Any) -> Method:
        cls = self.get("method", name).obj
        check_params("method", name, cls, params)
        return cls(**params)  # type: ignore[no-any-return]

    def metric(self, name: str) -> MetricSpec:
        return self.get("metric", name).obj  # type: ignore[no-any-return]

    def entries(self) -> list[Entry]:
        return [e for kind in KINDS for e in sorted(self.table(kind).values(), key=lambda e: e.name)]


def check_params(kind: str, name: str, cls: Any, params: Mapping[str, Any], *, values: bool = True) -> None:
    """``PluginError`` for a parameter the plugin's ``__init__`` does not take, or (with
    ``values``) a value its annotation does not allow (see :mod:`harness.params`)."""
    unknown = set(params) - set(cls.param_names())
    if unknown:
        raise PluginError(
            f"{kind} {name!r} has no parameter {', '.join(sorted(unknown))}; "
            f"parameters: {', '.join(cls.param_names()) or '(none)'}"
        )
    if values:
        annotated.check(name, cls, params)


def unknown_message(kind: str, name: str, known: Iterable[str]) -> str:
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return (
        f"unknown {kind} {name!r}; installed: {', '.join(names) or '(none)'}{hint} "
        f"(see 'bench list {kind}s')"
    )


def _validate(kind: Kind, obj: Any, label: str) -> None:
    if kind == "executor":
        from harness.executors.base import Executor  # the executors import this module

        if not (isinstance(obj, type) and issubclass(obj, Executor)):
            raise PluginError(f"{label}: expected a subclass of harness.executors.Executor, got {obj!r}")
        return
    expected = {"dataset": Dataset, "method": Method}.get(kind)
    if expected is not None:
        if not (isinstance(obj, type) and issubclass(obj, expected)):
            raise PluginError(f"{label}: expected a subclass of harness.{expected.__name__}, got {obj!r}")
        obj.param_names()  # raises for **kwargs
    elif not isinstance(obj, MetricSpec):
        raise PluginError(f"{label}: expected a harness.MetricSpec, got {obj!r}")


def _split_env(value: str | None) -> set[str] | None:
    if value is None or not value.strip():
        return None
    return {v.strip() for v in value.split(",") if v.strip()}


def _selected(names: Iterable[str], allow: set[str] | None, block: set[str] | None) -> bool:
    names = set(names)
    if block and names & block:
        return False
    return allow is None or bool(names & allow)


def make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


#: The ``register`` callables the registration hooks receive, one type per kind.
DatasetRegister = Callable[[type[Dataset]], None]
MethodRegister = Callable[[type[Method]], None]
MetricRegister = Callable[[MetricSpec], None]


def register_hook(kind: str) -> str:
    """The name of the hook through which plugins register things of ``kind``."""
    return f"bench_register_{kind}s"


def _fix(source: Source) -> str:
    return (
        f"update or uninstall {source.distribution!r}, or skip it with "
        f"BENCH_DISABLE_PLUGINS={source.entry_point}"
    )


def call_each(
    pm: pluggy.PluginManager,
    hook_name: str,
    plugin: object,
    **kwargs: Any,
) -> None:
    """Call ``plugin``'s implementations of the hook ``hook_name`` alone, through the plugin
    manager's own record of them (marked functions, ``specname`` included)."""
    caller = getattr(pm.hook, hook_name, None)
    if caller is None:
        return
    for impl in caller.get_hookimpls():
        if impl.plugin is plugin:
            impl.function(**{arg: kwargs[arg] for arg in impl.argnames})


def _fail(registry: Registry, source: Source, error: str, warn: bool) -> None:
    failure = LoadFailure(source.entry_point, source.distribution, f"{error}; {_fix(source)}")
    registry.failures.append(failure)
    if warn:
        warnings.warn(
            f"segbench plugin {source.entry_point!r} from distribution {source.distribution!r} "
            f"failed to load and is skipped: {failure.error}",
            PluginLoadWarning,
            stacklevel=3,
        )


def build_registry(
    *,
    entry_points: Iterable[metadata.EntryPoint] | None = None,
    extra_plugins: Iterable[tuple[object, Source]] = (),
    env: Mapping[str, str] | None = None,
    warn: bool = True,
) -> Registry:
    """Load plugins and collect what they register.  Never called at import time.

    ``entry_points`` defaults to the installed ``segbench`` group; ``extra_plugins`` adds
    in-memory plugin objects (tests, notebooks).  Selection comes from ``env``
    (default ``os.environ``).

    Each plugin is registered with the plugin manager, its hooks are checked against the
    specifications (a misspelled hook is a load failure), and its registration hooks are
    called one plugin at a time with a ``register`` of its own.  A plugin whose import,
    hooks or registrations fail (or whose names clash with one already registered, built-ins
    first) is skipped as a whole and recorded in ``Registry.failures``; the others load.
    """
    env = os.environ if env is None else env
    allow = _split_env(env.get("BENCH_PLUGINS"))
    block = _split_env(env.get("BENCH_DISABLE_PLUGINS"))
    pm = make_plugin_manager()
    registry = Registry(pm=pm)
    if entry_points is None:
        entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
    loaded: list[tuple[object, Source]] = []
    for ep in sorted(entry_points, key=lambda e: e.name):
        dist = ep.dist.name if ep.dist is not None else "<unknown>"
        dist_version = ep.dist.version if ep.dist is not None else "0"
        if block and {ep.name, dist} & block:
            continue  # the allow-list is applied per registered plugin below
        source = Source(ep.name, dist, dist_version)
        try:
            plugin = ep.load()
        except Exception as exc:  # noqa: BLE001 - any import failure is reported, not fatal
            _fail(registry, source, f"{type(exc).__name__}: {exc}", warn)
            continue
        loaded.append((plugin, source))
    loaded.extend(extra_plugins)
    loaded.sort(key=lambda item: not item[1].builtin)  # built-in names win a clash
    accepted: list[tuple[object, Source]] = []
    for plugin, source in loaded:
        try:
            pm.register(plugin, name=f"{source.distribution}:{source.entry_point}:{id(plugin)}")
            for caller in pm.get_hookcallers(plugin) or []:
                if caller.spec is None:
                    raise pluggy.PluginValidationError(
                        plugin, f"unknown hook {caller.name!r} (misspelled?)"
                    )
        except Exception as exc:  # noqa: BLE001 - a bad plugin is reported, not fatal
            if pm.is_registered(plugin):
                pm.unregister(plugin)
            _fail(registry, source, f"{type(exc).__name__}: {exc}", warn)
            continue
        accepted.append((plugin, source))
    pm.check_pending()  # every remaining implementation now matches a specification
    for plugin, source in accepted:
        pending: list[tuple[Kind, Any]] = []
        try:
            for kind in KINDS:

                def register(
                    obj: Any, _kind: Kind = kind, _source: Source = source, _out: list[Any] = pending
                ) -> None:
                    names = {getattr(obj, "name", ""), _source.entry_point, _source.distribution}
                    if _selected(names, allow, block):
                        _out.append((_kind, obj))

                call_each(pm, register_hook(kind), plugin, register=register)
            _add_all(registry, pending, source)
        except Exception as exc:  # noqa: BLE001 - a bad plugin is reported, not fatal
            pm.unregister(plugin)
            _fail(registry, source, f"{type(exc).__name__}: {exc}", warn)
    return registry


def _add_all(registry: Registry, pending: list[tuple[Kind, Any]], source: Source) -> None:
    """Add everything one plugin registered, or nothing when any of it is refused."""
    trial = Registry()
    for kind in KINDS:
        trial.table(kind).update(registry.table(kind))
    for kind, obj in pending:
        trial.add(kind, obj, source)
    for kind in KINDS:
        registry.table(kind).update(trial.table(kind))
