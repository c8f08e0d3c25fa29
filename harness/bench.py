"""The programmatic API behind ``bench run`` and ``bench leaderboard``.

>>> from harness.bench import run_benchmark, build_leaderboard   # doctest: +SKIP
>>> result = run_benchmark(registry, [("synthetic", {})], [("otsu", {})], seeds=[0])
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import importlib.util
import os
import re
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import params as annotated
from harness import uncertainty
from harness.executors import get_executor
from harness.leaderboard import RankedMetric, measured_rows, rank, reference_rows, to_csv
from harness.plugins import Registry, check_params, unknown_message
from harness.provenance import provenance
from harness.records import CellRecord
from harness.runner import CellSpec, RunResult, execute_cell, plan
from harness.store import Store
from harness.types import BUDGETS, PluginError

DEFAULT_DATASETS = ("dsb2018-sample",)
DEFAULT_METHODS = ("otsu",)


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def parse_value(text: str) -> Any:
    text = text.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_specs(text: str, known: Sequence[str] | Mapping[str, Any], kind: str) -> list[tuple[str, dict[str, Any]]]:
    """``"a,b(k=v,k2=3)"`` → ``[("a", {}), ("b", {"k": "v", "k2": 3})]``; ``all`` → every name.

    With ``known`` a registry table (name → entry), each value is read as the type its
    ``__init__`` annotation names and checked (``PluginError`` naming the plugin, the
    parameter, the value and what is allowed); with names alone, :func:`parse_value` guesses."""
    classes = {n: getattr(e, "obj", e) for n, e in known.items()} if isinstance(known, Mapping) else {}
    out: list[tuple[str, dict[str, Any]]] = []
    for item in _split_top(text):
        if item == "all":
            out += [(name, {}) for name in sorted(known)]
            continue
        name, params = item, {}
        if "(" in item:
            if not item.endswith(")"):
                raise PluginError(f"cannot parse {kind} {item!r}; expected NAME or NAME(key=value, …)")
            name, inner = item[:-1].split("(", 1)
            for pair in _split_top(inner):
                if "=" not in pair:
                    raise PluginError(f"{kind} {name!r}: parameter {pair!r} is not key=value")
                k, v = pair.split("=", 1)
                params[k.strip()] = v
        name = name.strip()
        if name not in known:
            raise PluginError(unknown_message(kind, name, known))
        cls = classes.get(name)
        if cls is None:
            params = {k: parse_value(v) for k, v in params.items()}
        else:
            check_params(kind, name, cls, params, values=False)  # unknown names first, with the list
            params = {k: annotated.from_text(name, cls, k, v, parse_value) for k, v in params.items()}
        out.append((name, params))
    return out


def resolve_device(device: str, registry: Registry, methods: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """``auto`` → ``cuda`` when a chosen method uses a GPU and torch sees one, else ``cpu``.

    An explicit ``cuda``/``cuda:N`` must exist (``ValueError`` otherwise): a run never records
    a device it did not use.
    """
    if device == "cpu":
        return device
    if device != "auto":
        if not re.fullmatch(r"cuda(:\d+)?", device):
            raise ValueError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N")
        count = 0
        if importlib.util.find_spec("torch") is not None:
            import torch

            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.partition(":")[2] or 0)
        if index >= count:
            raise ValueError(
                f"--device {device!r}: this machine has {count} usable CUDA device(s); "
                "use --device cpu, or --device auto to fall back to the CPU"
            )
        return device
    wants_gpu = any(registry.get("method", m).obj.uses_gpu for m, _ in methods)
    if not wants_gpu or importlib.util.find_spec("torch") is None:
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def run_benchmark(
    registry: Registry,
    datasets: Sequence[tuple[str, Mapping[str, Any]]],
    methods: Sequence[tuple[str, Mapping[str, Any]]],
    seeds: Sequence[int] = (0,),
    *,
    budget: str = "quick",
    device: str = "auto",
    metrics: Sequence[str] | None = None,
    executor: str = "local",
    executor_options: Mapping[str, Any] | None = None,
    method_budgets: Mapping[int, str] | None = None,
    suite: Mapping[str, Any] | None = None,
    jobs: int = 1,
    cell_timeout: float | None = None,
    force: bool = False,
    save_probabilities: bool = False,
    store: Store | None = None,
    run_id: str | None = None,
    on_event: Callable[[str, CellSpec, Mapping[str, Any] | None], None] | None = None,
) -> RunResult:
    """Plan, skip what is finished, execute the rest, and record the run's manifest.

    ``method_budgets`` maps an index into ``methods`` to that method's own budget; ``suite``
    (the suite file's name and text) is recorded in the manifest."""
    store = store or Store()
    if metrics:
        for name in metrics:
            registry.get("metric", name)  # unknown names fail early with a suggestion
    device = resolve_device(device, registry, methods)
    # a bad executor name or option fails before anything is planned or written
    runner = get_executor(executor, registry)(store.root, jobs=jobs, cell_timeout=cell_timeout, registry=registry,
                                              options=executor_options)
    budget_of = [(method_budgets or {}).get(i, budget) for i in range(len(methods))]
    cells = []
    for name in dict.fromkeys(budget_of):  # one plan per budget (a suite file may set it per method)
        chosen = [m for m, b in zip(methods, budget_of, strict=True) if b == name]
        cells += plan(registry, datasets, chosen, seeds, budget=name, device=device, metrics=metrics,
                      store=store, save_probabilities=save_probabilities)
    run_id = run_id or dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    manifest: dict[str, Any] = {
        "status": "running",
        "cells": [c.key for c in cells],
        "cell_specs": [c.describe() for c in cells],
        "dataset_info": {n: dataset_info(registry.dataset(n, **p)) for n, p in datasets},
        "datasets": [[n, dict(p)] for n, p in datasets],
        "methods": [[n, dict(p)] for n, p in methods],
        "seeds": list(seeds),
        "budget": BUDGETS[budget].as_dict(),
        "device": device,
        "executor": executor,
        "executor_options": dict(executor_options or {}),
        **({"method_budgets": {m[0]: b for m, b in zip(methods, budget_of, strict=True) if b != budget}}
           if method_budgets else {}),
        **({"suite": dict(suite)} if suite else {}),
        **provenance(registry),
    }
    manifest.update(pid=os.getpid(), host=socket.gethostname())
    store.write_run(run_id, manifest)
    store.clean_partial()
    result = RunResult(run_id=run_id, cells=cells)
    hook = registry.pm.hook if registry.pm is not None else None
    try:
        for cell in cells:
            if not force and store.is_finished(cell.key):
                stored = store.cell(cell.key)
                assert stored is not None  # is_finished read it
                result.records[cell.key] = stored
                result.reused += 1
                if on_event:
                    on_event("reused", cell, result.records[cell.key])
                continue
            if hook is not None:
                hook.bench_cell_started(cell=cell.describe())
            if not force and store.stage(cell.predict_key) is not None:
                # saved predictions, new metric set: score them here, whatever the executor
                if on_event:
                    on_event("rescoring", cell, None)
                _finished(result, cell, execute_cell(cell, store.root, registry), hook, on_event)
                result.rescored += 1
                continue
            runner.submit(dataclasses.replace(cell, fresh=True) if force else cell)
            if on_event:
                on_event("submitted", cell, None)
        for cell, record in runner.as_completed():
            _finished(result, cell, record, hook, on_event)
    except BaseException as exc:
        runner.cancel()  # Ctrl-C or a failing hook: stop the cells still queued or running
        manifest.update(status="aborted", aborted=f"{type(exc).__name__}: {exc}".strip(": "),
                        counts=result.counts())
        store.write_run(run_id, manifest)
        raise
    manifest.update(status="finished", counts=result.counts(), reused=result.reused, rescored=result.rescored)
    store.write_run(run_id, manifest)
    if hook is not None:
        hook.bench_run_finished(run={"run_id": run_id, "cells": manifest["cells"], "counts": manifest["counts"]})
    return result


def _finished(result: RunResult, cell: CellSpec, record: Mapping[str, Any], hook: Any,
              on_event: Callable[[str, CellSpec, Mapping[str, Any] | None], None] | None) -> None:
    typed = record if isinstance(record, CellRecord) else CellRecord.from_json({"key": cell.key, **record})
    result.records[cell.key] = typed
    if hook is not None:
        hook.bench_cell_finished(cell=cell.describe(), record=typed)
    if on_event:
        on_event("finished", cell, record)


def ranked_metrics(registry: Registry, dataset_name: str, chosen: Sequence[str] | None, splits: Sequence[str]) -> list[RankedMetric]:
    ds_cls = registry.get("dataset", dataset_name).obj
    names = list(chosen) if chosen else [m for m in ds_cls.primary_metrics if m in registry.metrics]
    if not names:
        raise PluginError(
            f"dataset {dataset_name!r} ranks by {', '.join(ds_cls.primary_metrics)}, none of which is "
            "installed; choose metrics with --metrics"
        )
    out = []
    for name in names:
        spec = registry.metric(name)
        out.append(RankedMetric(name=name, higher_is_better=spec.higher_is_better, splits=tuple(splits)))
    return out


def dataset_info(ds: Any) -> dict[str, Any]:
    """What a leaderboard states about a dataset, recorded when the run starts (so building the
    leaderboard later needs no dataset files)."""
    return {"version": ds.version, "license": ds.license, "citation": ds.citation,
            "splits": {s: ds.sample_ids(s) for s in ds.splits}}


def build_leaderboard(
    registry: Registry,
    store: Store,
    run: Mapping[str, Any],
    dataset: str,
    *,
    metrics: Sequence[str] | None = None,
    reference: Path | None = None,
    reference_citation: str | None = None,
    bootstrap: int = 0,
    bootstrap_seed: int = uncertainty.DEFAULT_SEED,
) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """(CSV text, ranked rows, provenance) for one dataset of a stored run; with ``bootstrap``
    resamples (> 0), bootstrap intervals, rank intervals and paired tests are added
    (:mod:`harness.uncertainty`)."""
    records = [store.cell(k) for k in run["cells"]]
    mine = [r for r in records if r is not None and r.get("dataset") == dataset]
    if not mine:
        present = sorted({r["dataset"] for r in records if r})
        raise PluginError(f"run {run['run_id']} has no results for dataset {dataset!r}; it has: {', '.join(present) or '(none)'}")
    splits = mine[0]["eval_splits"]
    ranked = ranked_metrics(registry, dataset, metrics, splits)
    specs = {m.name: registry.metric(m.name) for m in ranked}
    missing = [c for c in run.get("cell_specs", []) if c.get("dataset") == dataset and store.cell(c["key"]) is None]
    rows = measured_rows(store, mine, ranked, specs, missing)
    if reference is not None:
        rows += reference_rows(reference, ranked, specs)
    table = rank(rows, ranked)
    extra: list[str] = []
    if bootstrap:
        settings = uncertainty.Settings(resamples=bootstrap, seed=bootstrap_seed)
        spread = uncertainty.annotate(table, uncertainty.image_statistics(store, mine), ranked, specs, settings)
        extra = uncertainty.extra_columns(ranked)
    info = (run.get("dataset_info") or {}).get(dataset)
    if info is None:  # a run recorded before dataset facts were kept in its manifest
        info = dataset_info(registry.dataset(dataset, **(mine[0].get("dataset_params") or {})))
    writer = provenance(registry)
    measured = {k: run[k] for k in ("segbench", "machine", "packages", "plugins", "date") if k in run}
    prov = {
        **writer,
        **measured,  # what measured, not what writes the leaderboard
        "leaderboard_written": {"segbench": writer["segbench"], "date": writer["date"]},
        "dataset": dataset,
        "dataset_version": info["version"],
        "dataset_params": mine[0].get("dataset_params") or {},
        "dataset_license": info["license"],
        "dataset_citation": info["citation"],
        "dataset_splits": info["splits"],
        "run_id": run["run_id"],
        "run_status": run.get("status"),
        "run_command": run.get("command"),
        "run_segbench": run.get("segbench"),
        "cells": [r["key"] for r in mine],
        "seeds": sorted({r["seed"] for r in mine}),
        "budget": run.get("budget"),
        "ranking": {
            "metrics": [{"name": m.name, "higher_is_better": m.higher_is_better, "splits": list(m.splits)} for m in ranked],
            "method": "standard competition ranking per column; rows by sum of ranks",
        },
    }
    if bootstrap:
        prov["uncertainty"] = spread
    if reference is not None:
        prov["reference"] = {"file": reference.name, "citation": reference_citation or ""}
    method_notes = sorted({
        f"- `{r['method']}`: {registry.get('method', r['method']).obj.description}"
        for r in mine if r["method"] in registry.methods and registry.get("method", r["method"]).obj.description
    })
    if method_notes:
        prov["notes"] = ["Methods:", *method_notes]
    return to_csv(table, ranked, extra), table, prov




__all__ = ["DEFAULT_DATASETS", "DEFAULT_METHODS", "build_leaderboard", "parse_specs", "run_benchmark"]
