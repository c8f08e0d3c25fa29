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
import shutil
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import harness
from harness.plugins import Registry, build_registry
from harness.predictions import FILE_NAME as PREDICTIONS_FILE
from harness.predictions import PredictionReader, PredictionWriter
from harness.profiler import PeakMemory, Stopwatch, latency_summary
from harness.records import SCHEMA_VERSION, CellRecord
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
    #: The key of the cell's predict stage (fit + predictions), which excludes the metrics.
    predict_key: str = ""
    #: Refit and re-predict even when the predict stage is stored (``--force``).
    fresh: bool = False
    #: Keep the probability maps beside the label maps (``--save-probabilities``; large).
    save_probabilities: bool = False

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


def method_source(cls: Any) -> dict[str, Any]:
    """A sha256 over the source a plugin's results depend on (a method or dataset class, a
    metric function): its module and the modules of the same package it imports, followed
    transitively (:mod:`harness.sources`).  Editing any of them changes the hash without a
    ``version`` bump."""
    from harness.sources import source_digest

    return source_digest(cls)


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
    save_probabilities: bool = False,
) -> list[CellSpec]:
    """The cross product of datasets × methods × seeds, each cell with its key.

    File content hashes are cached in ``store`` (none given: hashed afresh)."""
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; choose from {', '.join(BUDGETS)}")
    cache = store.file_hashes() if store is not None else FileHashCache(None)
    cells = []
    metric_code: dict[str, list[Any]] = {}
    sources: dict[type, dict[str, Any]] = {}  # one source digest per method class and plan
    for ds_name, ds_params in datasets:
        dataset = registry.dataset(ds_name, **ds_params)
        content = dataset_content(dataset, cache)
        loader = method_source(type(dataset))  # a loader fix changes the reference: new cells
        fingerprint = {**dataset.fingerprint(), "content": content["sha256"], "source": loader["sha256"]}
        for m_name, m_params in methods:
            method = registry.method(m_name, **m_params)
            if type(method) not in sources:
                sources[type(method)] = method_source(type(method))
            source = sources[type(method)]
            params = method.get_params()
            chosen = applicable_metrics(registry, dataset.provides, method.outputs, metrics)
            learns = bool(method.learns)
            packages = result_packages(method)
            for m in chosen:  # a metric's version and source: an edit rescores, without refitting
                if m not in metric_code:
                    spec = registry.metric(m)
                    metric_code[m] = [spec.version, method_source(spec.statistics)["sha256"]]
            for seed in seeds:
                predict_parts = {
                    "stage": "predict",
                    "harness": harness.__version__,
                    "dataset": fingerprint,
                    "method": {"name": m_name, "version": method.version, "params": params,
                               "source": source["sha256"]},
                    "seed": seed,
                    "budget": BUDGETS[budget].as_dict() if learns else None,
                    "device": device if method.uses_gpu else "cpu",
                    **({"packages": packages} if packages else {}),
                    **({"probabilities": True} if save_probabilities else {}),
                }
                predict_key = cell_key(predict_parts)
                parts = {"predict": predict_key, "metrics": {m: metric_code[m] for m in chosen}}
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
                        provenance={"method_source": source, "dataset_content": content, "dataset_source": loader,
                                    **({"packages_keyed": packages} if packages else {})},
                        predict_key=predict_key,
                        save_probabilities=save_probabilities,
                    )
                )
    cache.save()
    return cells


def result_packages(method: Any) -> dict[str, str]:
    """Versions of the packages a method names in ``result_packages`` (e.g. torch for the deep
    methods: a new kernel can change a trained network), part of its predict key."""
    from importlib import metadata

    out = {}
    for name in getattr(method, "result_packages", ()) or ():
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


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
) -> CellRecord:
    """Run one cell and store its record (returned typed); never raises for a failure of the
    cell itself.

    Two stages: when the store holds the cell's intact predict stage (``spec.predict_key``),
    the saved predictions are scored and nothing is fitted or predicted; otherwise the method
    is fitted, every evaluation image predicted (and saved), and the predict stage stored
    before the score stage.  ``on_start`` is called once the plugins are loaded, just before
    fitting (or rescoring): executors start the cell's time limit there, so it measures the
    cell's work and not process start-up."""
    store = Store(store_root)
    record: dict[str, Any] = {
        **spec.describe(),
        "dataset_params": dict(spec.dataset_params),
        "budget": spec.budget,
        "device": spec.device,
        "metrics": list(spec.metrics),
        "eval_splits": list(spec.eval_splits),
        "predict_key": spec.predict_key,
        "started": _now(),
        "harness_version": harness.__version__,
        **dict(spec.provenance),
    }
    rows: list[dict[str, Any]] = []
    try:
        registry = registry or build_registry(warn=False)
        dataset = registry.dataset(spec.dataset, **spec.dataset_params)
        record["dataset_version"] = dataset.version
        specs = [registry.metric(m) for m in spec.metrics]
        stage = store.stage(spec.predict_key) if spec.predict_key and not spec.fresh else None
        if stage is not None:
            if on_start is not None:
                on_start()
            rows = _rescore(store, stage, dataset, specs, on_image)
            record.update({k: v for k, v in stage.items() if k in STAGE_FIELDS})
            record["rescored"] = True
        else:
            method = registry.method(spec.method, **spec.method_params)
            record["method_version"] = method.version
            record["learns"] = method.learns
            record["method_distribution"] = registry.get("method", spec.method).source.distribution
            reason = method.not_applicable(dataset)
            if reason:
                record.update(status="skipped", error=reason, finished=_now())
                store.write_cell(spec.key, record, [])
                return CellRecord.from_json({"schema": SCHEMA_VERSION, **record, "key": spec.key})
            if on_start is not None:
                on_start()
            rows, stage_record = _predict_stage(spec, store, dataset, method, specs, on_image,
                                                record["method_distribution"])
            record.update({k: v for k, v in stage_record.items() if k in STAGE_FIELDS})
        record["splits"] = summarise_splits(rows, specs, spec.eval_splits)
        record["n_failed_images"] = sum(1 for r in rows if r["status"] != "ok")
        errored = [r for r in rows if r["status"] == "error"]
        if rows and len(errored) == len(rows):
            first = errored[0]
            record["traceback"] = first.get("traceback")
            raise RuntimeError(f"every image failed; first ({first['split']}/{first['sample_id']}): {first.get('error')}")
        record["status"] = "done"
    except MemoryError:
        record.update(status="error", error="out of memory (MemoryError)")
    except CellTimeout as exc:
        record.update(status="error", error=f"timeout: {exc}")
    except Exception as exc:  # noqa: BLE001 - a failing cell is a record, not a crashed run
        record.update(status="error", error=f"{type(exc).__name__}: {exc}")
        record.setdefault("traceback", None)
        if not record["traceback"]:
            record["traceback"] = traceback.format_exc(limit=-20)
    record["finished"] = _now()
    # a cell another writer finished meanwhile is kept: its result is as good (same key)
    store.write_cell(spec.key, record, rows, replace_finished=spec.fresh)
    if not spec.fresh and record["status"] != "done":
        kept = store.cell(spec.key)
        if kept is not None and kept.finished:
            return kept
    return CellRecord.from_json({"schema": SCHEMA_VERSION, **record, "key": spec.key})


#: What a cell's record copies from its predict stage (fit and predict timings, memory).
STAGE_FIELDS = (
    "method_version", "learns", "method_distribution", "fit_s", "latency_p50_ms", "latency_p95_ms",
    "latency_mean_ms", "images_per_s", "predict_s", "n_images", "n_timed", "peak_rss_mb",
    "rss_increase_mb", "peak_gpu_mb", "gpu", "predict_batch_size", "predictions", "submitted",
    "cell_images_per_s", "training",
)


def _predict_stage(
    spec: CellSpec, store: Store, dataset: Any, method: Any, specs: Sequence[MetricSpec],
    on_image: Callable[[str, str], None] | None, distribution: str | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Fit, predict and score every evaluation image, saving each prediction; store the
    predict stage.  Returns the image rows and the stage record."""
    _seed_everything(spec.seed)
    method.setup(RunContext(seed=spec.seed, device=spec.device, budget=BUDGETS[spec.budget],
                            workdir=store.root / "work" / spec.key))
    cuda = spec.device.startswith("cuda")
    stage: dict[str, Any] = {"dataset": spec.dataset, "method": spec.method, "params": dict(spec.method_params),
                             "seed": spec.seed, "method_version": method.version, "learns": method.learns,
                             "method_distribution": distribution,
                             "created": _now()}
    rows: list[dict[str, Any]] = []
    index: list[dict[str, Any]] = []
    latencies: list[float] = []
    calls: list[int] = []  # images per timed predict call, in order
    tmp = store.new_stage(spec.predict_key)
    try:
        with PeakMemory() as memory:
            if method.learns:
                assert dataset.train_split is not None
                train = list(dataset.samples(dataset.train_split))
                validation = list(dataset.samples("validation")) if "validation" in dataset.splits else []
                with Stopwatch(cuda_sync=cuda) as fit_clock:
                    method.fit(train, validation)
                stage["fit_s"] = fit_clock.seconds
                summary = getattr(method, "training_", None)  # what a learner reports of its fit
                if isinstance(summary, Mapping) and summary:
                    stage["training"] = dict(summary)
                del train, validation
                for name, data in _saved_state(method).items():
                    (tmp / name).write_bytes(data)
            batch = batch_size(method)
            stage["predict_batch_size"] = batch
            with PredictionWriter(tmp / PREDICTIONS_FILE, probabilities=spec.save_probabilities) as writer, Stopwatch() as loop_clock:
                for split in spec.eval_splits:
                    for group in _batches(dataset.sample_ids(split), batch):
                        for sid in group:
                            if on_image is not None:
                                on_image(split, sid)
                        for row, pred in _evaluate_batch(dataset, method, split, group, specs, latencies, cuda,
                                                         calls):
                            entry: dict[str, Any] = {k: row[k] for k in ("split", "sample_id", "status", "error",
                                                                         "predict_s") if k in row}
                            if pred is not None:
                                entry["n"], entry["fields"] = writer.add(pred)
                            index.append(entry)
                            rows.append(row)
                saved = writer.close()
        # the first call (one image, or one whole batch) is the warm-up, left out of the statistics
        stage.update(latency_summary(latencies, warmup=calls[0] if calls else 1))
        stage.update(memory.as_dict())
        stage["cell_images_per_s"] = len(rows) / loop_clock.seconds if loop_clock.seconds > 0 else None
        stage["predictions"] = {**saved, "bytes_per_image": saved["bytes"] / max(1, saved["images"])}
        stage["images"] = index
        if index and all(e["status"] == "error" for e in index):
            shutil.rmtree(tmp, ignore_errors=True)  # nothing worth keeping: the cell is an error
        else:
            store.commit_stage(spec.predict_key, tmp, stage, replace=spec.fresh)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return rows, stage


def _rescore(
    store: Store, stage: Mapping[str, Any], dataset: Any, specs: Sequence[MetricSpec],
    on_image: Callable[[str, str], None] | None,
) -> list[dict[str, Any]]:
    """Image rows from saved predictions: the reference is loaded, nothing is predicted."""
    rows: list[dict[str, Any]] = []
    with PredictionReader(store.stage_dir(stage["key"]) / PREDICTIONS_FILE) as reader:
        for entry in stage["images"]:
            if on_image is not None:
                on_image(entry["split"], entry["sample_id"])
            row: dict[str, Any] = {"split": entry["split"], "sample_id": entry["sample_id"], "status": "ok"}
            if "predict_s" in entry:
                row["predict_s"] = entry["predict_s"]
            if "n" not in entry:
                row.update(status="error", error=entry.get("error") or "no saved prediction")
                rows.append(row)
                continue
            try:
                sample = dataset.load(entry["split"], entry["sample_id"])
            except Exception as exc:  # noqa: BLE001 - a bad file fails this image, recorded
                row.update(status="error", error=f"load: {type(exc).__name__}: {exc}",
                           traceback=_short_traceback())
                rows.append(row)
                continue
            _score_into(row, reader.get(entry["n"]), sample, specs)
            rows.append(row)
    return rows


def batch_size(method: Any) -> int:
    """Images per ``predict_batch`` call: the method's ``predict_batch_size`` when it
    implements ``predict_batch`` itself, else 1."""
    from harness.types import Method

    own = type(method).predict_batch is not Method.predict_batch
    return max(1, int(getattr(method, "predict_batch_size", 1))) if own else 1


def _batches(ids: Sequence[str], size: int) -> list[list[str]]:
    ids = list(ids)
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def _short_traceback() -> str:
    return traceback.format_exc(limit=-8)


def _saved_state(method: Any) -> dict[str, bytes]:
    """The fitted state as ``model.safetensors`` (no pickle), when the method has any."""
    state = method.state_dict()
    if not state:
        return {}
    from safetensors.numpy import save

    arrays = {k: np.ascontiguousarray(v) for k, v in state.items()}
    return {"model.safetensors": save(arrays, metadata={"method": method.name, "version": str(method.version)})}


def _evaluate_batch(
    dataset: Any, method: Any, split: str, sids: Sequence[str], specs: Sequence[MetricSpec],
    latencies: list[float], cuda: bool, calls: list[int] | None = None,
) -> list[tuple[dict[str, Any], Prediction | None]]:
    """Load, predict (in one ``predict_batch`` call where images share a size) and score."""
    out: list[tuple[dict[str, Any], Prediction | None]] = []
    samples: list[tuple[dict[str, Any], Sample]] = []
    for sid in sids:
        row: dict[str, Any] = {"split": split, "sample_id": sid, "status": "ok"}
        try:
            samples.append((row, dataset.load(split, sid)))
        except Exception as exc:  # noqa: BLE001 - a bad file fails this image, recorded
            row.update(status="error", error=f"load: {type(exc).__name__}: {exc}", traceback=_short_traceback())
            out.append((row, None))
    groups: dict[tuple[int, ...], list[tuple[dict[str, Any], Sample]]] = {}
    for item in samples:
        groups.setdefault(item[1].image.shape, []).append(item)
    for group in groups.values():
        try:
            with Stopwatch(cuda_sync=cuda) as clock:
                preds = (method.predict_batch([s.image for _, s in group]) if len(group) > 1
                         else [method.predict(group[0][1].image)])
            if len(preds) != len(group):
                raise ValueError(f"method {method.name!r}: predict_batch returned {len(preds)} predictions "
                                 f"for {len(group)} images")
        except (MemoryError, CellTimeout):
            raise
        except Exception as exc:  # noqa: BLE001
            for row, _ in group:
                row.update(status="error", error=f"predict: {type(exc).__name__}: {exc}",
                           traceback=_short_traceback())
                out.append((row, None))
            continue
        per_image = clock.seconds / len(group)
        timed_before = len(latencies)
        for (row, sample), pred in zip(group, preds, strict=True):
            try:
                check_prediction(pred, sample, method.outputs, method.name)
            except Exception as exc:  # noqa: BLE001
                row.update(status="error", error=f"predict: {type(exc).__name__}: {exc}")
                out.append((row, None))
                continue
            latencies.append(per_image)
            row["predict_s"] = per_image
            _score_into(row, pred, sample, specs)
            out.append((row, pred))
        if calls is not None and len(latencies) > timed_before:
            calls.append(len(latencies) - timed_before)
    order = {sid: i for i, sid in enumerate(sids)}
    out.sort(key=lambda item: order[item[0]["sample_id"]])
    return out


def _score_into(row: dict[str, Any], pred: Prediction, sample: Sample, specs: Sequence[MetricSpec]) -> None:
    values, stats, errors = score_image(ImagePair(pred, sample), specs)
    row["values"] = values
    row["stats"] = stats
    if errors:
        row["metric_errors"] = errors
        row["status"] = "partial"


@dataclass
class RunResult:
    run_id: str
    cells: list[CellSpec]
    records: dict[str, CellRecord] = field(default_factory=dict)
    reused: int = 0
    rescored: int = 0

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
