"""Cells = dataset × method (with parameters) × seed: planning, keys and execution.

:func:`plan` turns a selection into :class:`CellSpec` objects whose ``key`` is a hash of
everything that determines the result; :func:`execute_cell` runs one cell (in whatever process
an executor chooses) and stores its record.  A failing cell becomes an ``error`` record; a
method that cannot run on a dataset becomes a ``skipped`` record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import random
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import harness
from harness.plugins import Registry, build_registry
from harness.profiler import PeakMemory, Stopwatch, latency_summary
from harness.store import FileHashCache, Store
from harness.types import BUDGETS, ImagePair, MetricSpec, Prediction, RunContext, Sample, with_implied


class CellTimeout(BaseException):
    """A cell ran past ``--cell-timeout``.  A ``BaseException``, so that the per-image and
    per-metric ``except Exception`` handlers (a failed load, a failed metric) let it through
    and the whole cell stops as ``timeout``."""


@dataclass(frozen=True)
class CellSpec:
    """Everything needed to run one cell, as plain data (it crosses process boundaries)."""

    dataset: str
    dataset_params: Mapping[str, Any]
    method: str
    method_params: Mapping[str, Any]
    seed: int
    budget: str
    device: str
    metrics: tuple[str, ...]
    eval_splits: tuple[str, ...]
    key: str = ""
    label: str = ""
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "dataset": self.dataset,
            "method": self.method,
            "params": dict(self.method_params),
            "seed": self.seed,
        }


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def cell_key(parts: Mapping[str, Any]) -> str:
    return hashlib.sha256(_canonical(parts).encode()).hexdigest()[:24]


def method_source(cls: type) -> dict[str, Any]:
    """A sha256 over the source files of a method class: its module and, when the module
    lives in a package other than the top-level ``plugins`` namespace, the package's
    ``__init__``.  Editing the code changes the hash without a ``version`` bump."""
    module = sys.modules.get(cls.__module__)
    paths: list[Path] = []
    if module is not None and getattr(module, "__file__", None):
        paths.append(Path(module.__file__))  # type: ignore[arg-type]
        package = (module.__package__ or "").strip()
        if package and package != "plugins" and package != cls.__module__:
            init = sys.modules.get(package)
            if init is not None and getattr(init, "__file__", None):
                paths.append(Path(init.__file__))  # type: ignore[arg-type]
    digest = hashlib.sha256()
    names = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        names.append(path.name)
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(data).digest())
    if not names:
        return {"sha256": None, "note": f"source of {cls.__module__}.{cls.__qualname__} not found"}
    return {"sha256": digest.hexdigest(), "files": names}


def dataset_files(dataset: Any) -> tuple[Path, list[Path]] | None:
    """The folder and the (non-hidden) files a dataset reads, or ``None`` when it cannot say.

    A dataset may define ``content_files()`` returning ``(base, paths)``; a file dataset
    (one with a ``directory``) reads every file below its folder."""
    listing = getattr(dataset, "content_files", None)
    if callable(listing):
        base, paths = listing()
        return Path(base), sorted(Path(p) for p in paths)
    directory = getattr(dataset, "directory", None)
    if directory is None or not Path(directory).is_dir():
        return None
    base = Path(directory)
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files.extend(Path(dirpath) / f for f in filenames if not f.startswith("."))
    return base, sorted(files)


def dataset_content(dataset: Any, cache: FileHashCache) -> dict[str, Any]:
    """A sha256 over (relative path, content sha256) of the files the dataset reads: the
    same data in another folder gives the same value, one changed byte a different one."""
    listed = dataset_files(dataset)
    if listed is None:
        return {"sha256": None,
                "note": "dataset lists no files; keyed by name, version, parameters and sample ids"}
    base, paths = listed
    digest = hashlib.sha256()
    for path in paths:
        rel = path.relative_to(base).as_posix()
        digest.update(rel.encode() + b"\0" + cache.sha256(path).encode() + b"\n")
    return {"sha256": digest.hexdigest(), "n_files": len(paths)}


def entry_label(method: str, params: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    """``name`` or ``name(k=v, …)`` listing the parameters that differ from the defaults."""
    changed = {k: v for k, v in params.items() if k not in defaults or defaults[k] != v}
    if not changed:
        return method
    return f"{method}(" + ", ".join(f"{k}={v}" for k, v in sorted(changed.items())) + ")"


def plan(
    registry: Registry,
    datasets: Sequence[tuple[str, Mapping[str, Any]]],
    methods: Sequence[tuple[str, Mapping[str, Any]]],
    seeds: Sequence[int],
    *,
    budget: str = "quick",
    device: str = "cpu",
    metrics: Sequence[str] | None = None,
    store: Store | None = None,
) -> list[CellSpec]:
    """The cross product of datasets × methods × seeds, each cell with its key.

    File content hashes are cached in ``store`` (none given: hashed afresh)."""
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; choose from {', '.join(BUDGETS)}")
    cache = store.file_hashes() if store is not None else FileHashCache(None)
    cells = []
    for ds_name, ds_params in datasets:
        dataset = registry.dataset(ds_name, **ds_params)
        content = dataset_content(dataset, cache)
        fingerprint = {**dataset.fingerprint(), "content": content["sha256"]}
        for m_name, m_params in methods:
            method = registry.method(m_name, **m_params)
            source = method_source(type(method))
            params = method.get_params()
            chosen = applicable_metrics(registry, dataset.provides, method.outputs, metrics)
            learns = bool(method.learns)
            for seed in seeds:
                parts = {
                    "harness": harness.__version__,
                    "dataset": fingerprint,
                    "method": {"name": m_name, "version": method.version, "params": params,
                               "source": source["sha256"]},
                    "seed": seed,
                    "budget": BUDGETS[budget].as_dict() if learns else None,
                    "device": device if method.uses_gpu else "cpu",
                    "metrics": {m: registry.metric(m).version for m in chosen},
                }
                cells.append(
                    CellSpec(
                        dataset=ds_name,
                        dataset_params=dict(ds_params),
                        method=m_name,
                        method_params=params,
                        seed=int(seed),
                        budget=budget,
                        device=device if method.uses_gpu else "cpu",
                        metrics=tuple(chosen),
                        eval_splits=tuple(dataset.eval_splits),
                        key=cell_key(parts),
                        label=entry_label(m_name, params, type(method).param_defaults()),
                        provenance={"method_source": source, "dataset_content": content},
                    )
                )
    cache.save()
    return cells


def applicable_metrics(
    registry: Registry,
    reference_provides: frozenset[str],
    prediction_provides: frozenset[str],
    selected: Sequence[str] | None = None,
) -> list[str]:
    """Metrics whose requirements the dataset and method both meet (all installed, or a
    selection; a selected metric that is not installed is an error)."""
    names = list(selected) if selected else sorted(registry.metrics)
    pred = with_implied(prediction_provides)
    out = []
    for name in names:
        spec = registry.metric(name)
        if spec.applicable(pred, frozenset(reference_provides)):
            out.append(name)
    return out


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def check_prediction(pred: Prediction, sample: Sample, outputs: frozenset[str], method: str) -> None:
    """Raise when a prediction is not a Prediction, lacks a declared output, has the wrong
    size, or holds values its fields cannot hold (used by the runner per image and by the
    conformance kit): ``foreground`` must have dtype bool; ``instances``, ``classes`` and
    ``clusters`` must be integer maps, ``instances`` and ``classes`` without negative ids;
    ``probabilities`` must be finite numbers over the image (H×W or C×H×W)."""
    if not isinstance(pred, Prediction):
        raise TypeError(f"method {method!r} returned {type(pred).__name__}, expected harness.Prediction")
    missing = set(outputs) - set(pred.provides())
    if missing:
        raise ValueError(f"method {method!r} declares outputs {sorted(outputs)} but returned no {sorted(missing)}")
    shape = sample.image.shape[:2]
    for name in ("foreground", "instances", "classes", "clusters", "probabilities"):
        arr = getattr(pred, name)
        if arr is None:
            continue
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"method {method!r}: {name} is a {type(arr).__name__}, expected a numpy array")
        if name == "probabilities":
            if arr.ndim not in (2, 3) or arr.shape[-2:] != shape:
                raise ValueError(f"method {method!r}: probabilities has shape {arr.shape}, expected "
                                 f"{shape} or (C, {shape[0]}, {shape[1]}) for image {shape}")
            if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
                raise TypeError(f"method {method!r}: probabilities has dtype {arr.dtype}, expected floats")
            if not np.isfinite(arr).all():
                raise ValueError(f"method {method!r}: probabilities holds {int((~np.isfinite(arr)).sum())} "
                                 "non-finite value(s) (NaN or inf)")
            continue
        if arr.shape != shape:
            raise ValueError(f"method {method!r}: {name} has shape {arr.shape}, image is {shape}")
        if name == "foreground":
            if arr.dtype != bool:
                raise TypeError(f"method {method!r}: foreground has dtype {arr.dtype}, expected bool "
                                "(e.g. return score > threshold)")
            continue
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"method {method!r}: {name} has dtype {arr.dtype}, expected an integer id map "
                            "(e.g. int32)")
        if name != "clusters" and arr.size and arr.min() < 0:
            raise ValueError(f"method {method!r}: {name} holds negative id {int(arr.min())}; ids are 0 "
                             "(background) or positive")


def score_image(pair: ImagePair, specs: Sequence[MetricSpec]) -> tuple[dict[str, float], dict[str, Any], dict[str, str]]:
    """Per-image values, statistics and per-metric errors (a metric error fails this image
    for that metric only)."""
    values: dict[str, float] = {}
    stats: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for spec in specs:
        try:
            s = {k: float(v) for k, v in spec.statistics(pair).items()}
            bad = [k for k, v in s.items() if not math.isfinite(v)]
            if bad:
                raise ValueError(f"non-finite statistics {bad}")
            value = spec.image_value(s)
            if not math.isfinite(value):
                raise ValueError("non-finite value")
        except Exception as exc:  # noqa: BLE001 - recorded per image and metric
            errors[spec.name] = f"{type(exc).__name__}: {exc}"
            continue
        values[spec.name] = value
        stats[spec.name] = s
    return values, stats, errors


def summarise_splits(rows: Sequence[Mapping[str, Any]], specs: Sequence[MetricSpec], splits: Sequence[str]) -> dict[str, Any]:
    """Split values from stored per-image statistics (used by cells and leaderboards alike)."""
    out: dict[str, Any] = {}
    for split in splits:
        split_rows = [r for r in rows if r["split"] == split]
        per_metric: dict[str, Any] = {}
        for spec in specs:
            stats = [r["stats"][spec.name] for r in split_rows if spec.name in r.get("stats", {})]
            failed = len(split_rows) - len(stats)
            entry: dict[str, Any] = {"n_images": len(split_rows), "n_failed": failed}
            if stats:
                try:
                    entry.update(spec.split_values(stats))
                except Exception as exc:  # noqa: BLE001
                    entry["error"] = f"{type(exc).__name__}: {exc}"
                    entry["n_failed"] = len(split_rows)
            per_metric[spec.name] = entry
        out[split] = per_metric
    return out


def execute_cell(
    spec: CellSpec,
    store_root: str | Path,
    registry: Registry | None = None,
    on_image: Callable[[str, str], None] | None = None,
    on_start: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run one cell and store its record; never raises for a failure of the cell itself.

    ``on_start`` is called once the plugins are loaded, just before fitting: executors start
    the cell's time limit there, so it measures the cell's work and not process start-up."""
    store = Store(store_root)
    record: dict[str, Any] = {
        **spec.describe(),
        "dataset_params": dict(spec.dataset_params),
        "budget": spec.budget,
        "device": spec.device,
        "metrics": list(spec.metrics),
        "eval_splits": list(spec.eval_splits),
        "started": _now(),
        "harness_version": harness.__version__,
        **dict(spec.provenance),
    }
    rows: list[dict[str, Any]] = []
    files: dict[str, bytes] = {}
    try:
        registry = registry or build_registry(warn=False)
        dataset = registry.dataset(spec.dataset, **spec.dataset_params)
        method = registry.method(spec.method, **spec.method_params)
        record["dataset_version"] = dataset.version
        record["method_version"] = method.version
        record["learns"] = method.learns
        reason = method.not_applicable(dataset)
        if reason:
            record.update(status="skipped", error=reason, finished=_now())
            store.write_cell(spec.key, record, [])
            return record
        specs = [registry.metric(m) for m in spec.metrics]
        _seed_everything(spec.seed)
        method.setup(RunContext(seed=spec.seed, device=spec.device, budget=BUDGETS[spec.budget],
                                workdir=store.root / "work" / spec.key))
        latencies: list[float] = []
        cuda = spec.device.startswith("cuda")
        if on_start is not None:
            on_start()
        with PeakMemory() as memory:
            if method.learns:
                assert dataset.train_split is not None
                train = list(dataset.samples(dataset.train_split))
                validation = list(dataset.samples("validation")) if "validation" in dataset.splits else []
                with Stopwatch(cuda_sync=cuda) as fit_clock:
                    method.fit(train, validation)
                record["fit_s"] = fit_clock.seconds
                del train, validation
                files.update(_saved_state(method))
            for split in spec.eval_splits:
                for sid in dataset.sample_ids(split):
                    if on_image is not None:
                        on_image(split, sid)
                    rows.append(_evaluate_one(dataset, method, split, sid, specs, latencies, cuda))
        record.update(latency_summary(latencies))
        record.update(memory.as_dict())
        record["splits"] = summarise_splits(rows, specs, spec.eval_splits)
        failed = sum(1 for r in rows if r["status"] != "ok")
        record["n_failed_images"] = failed
        if rows and failed == len(rows):
            raise RuntimeError(f"every image failed; first error: {rows[0].get('error')}")
        record["status"] = "done"
    except MemoryError:
        record.update(status="error", error="out of memory (MemoryError)")
    except CellTimeout as exc:
        record.update(status="error", error=f"timeout: {exc}")
    except Exception as exc:  # noqa: BLE001 - a failing cell is a record, not a crashed run
        record.update(status="error", error=f"{type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc(limit=20))
    record["finished"] = _now()
    store.write_cell(spec.key, record, rows, files)
    return record


def _saved_state(method: Any) -> dict[str, bytes]:
    """The fitted state as ``model.safetensors`` (no pickle), when the method has any."""
    state = method.state_dict()
    if not state:
        return {}
    from safetensors.numpy import save

    arrays = {k: np.ascontiguousarray(v) for k, v in state.items()}
    return {"model.safetensors": save(arrays, metadata={"method": method.name, "version": str(method.version)})}


def _evaluate_one(
    dataset: Any, method: Any, split: str, sid: str, specs: Sequence[MetricSpec],
    latencies: list[float], cuda: bool,
) -> dict[str, Any]:
    row: dict[str, Any] = {"split": split, "sample_id": sid, "status": "ok"}
    try:
        sample = dataset.load(split, sid)
    except Exception as exc:  # noqa: BLE001 - a bad file fails this image, recorded
        row.update(status="error", error=f"load: {type(exc).__name__}: {exc}")
        return row
    try:
        with Stopwatch(cuda_sync=cuda) as clock:
            pred = method.predict(sample.image)
        check_prediction(pred, sample, method.outputs, method.name)
    except (MemoryError, CellTimeout):
        raise
    except Exception as exc:  # noqa: BLE001
        row.update(status="error", error=f"predict: {type(exc).__name__}: {exc}")
        return row
    latencies.append(clock.seconds)
    row["predict_s"] = clock.seconds
    values, stats, errors = score_image(ImagePair(pred, sample), specs)
    row["values"] = values
    row["stats"] = stats
    if errors:
        row["metric_errors"] = errors
        row["status"] = "partial"
    return row


@dataclass
class RunResult:
    run_id: str
    cells: list[CellSpec]
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    reused: int = 0

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for rec in self.records.values():
            out[rec["status"]] = out.get(rec["status"], 0) + 1
        return out


def spec_from_dict(data: Mapping[str, Any]) -> CellSpec:
    data = dict(data)
    data["metrics"] = tuple(data["metrics"])
    data["eval_splits"] = tuple(data["eval_splits"])
    return CellSpec(**data)


def spec_to_dict(spec: CellSpec) -> dict[str, Any]:
    return asdict(spec)
