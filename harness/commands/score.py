"""``bench score`` (predictions made elsewhere → an ordinary, ranked cell) and ``bench export``
(saved predictions → standard image files and overlays)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from pathlib import Path
from typing import Any

import click
from rich.console import Console

import harness
from harness.bench import dataset_info, parse_specs
from harness.cli import registry_from
from harness.provenance import provenance
from harness.records import Status
from harness.runner import CellSpec, applicable_metrics, cell_key, dataset_content, execute_cell
from harness.store import Store
from harness.submitted import SubmissionError, content_sha256, export_stage, import_predictions
from harness.types import DataError, PluginError

KIND_PROVIDES = {
    "instances": frozenset({"foreground", "instances"}),
    "classes": frozenset({"foreground", "classes"}),
    "foreground": frozenset({"foreground"}),
}


@click.command("score")
@click.option("--dataset", "dataset_text", required=True, help="Dataset the predictions are for, NAME or NAME(key=value,…).")
@click.option("--predictions", "source", required=True, type=click.Path(exists=True, path_type=Path),
              help="Folder of label maps named <sample id>.png/.tif/.npy (flat or per split), or a "
                   "submission file the dataset reads (the DSB2018 RLE CSV).")
@click.option("--name", default=None, help="Entry name in the leaderboard (default: the folder's name).")
@click.option("--kind", type=click.Choice(sorted(KIND_PROVIDES)), default="instances", show_default=True,
              help="What the label maps are.")
@click.option("--metrics", default=None, help="Comma-separated metrics (default: every applicable one).")
@click.option("--run", "run_id", default=None,
              help="Add the entry to this existing run (to rank it beside its methods); default: a run of its own.")
@click.option("--store", "store_path", type=click.Path(path_type=Path), envvar="BENCH_RUNS", default="runs", show_default=True)
@click.pass_context
def score_cmd(ctx: click.Context, dataset_text: str, source: Path, name: str | None, kind: str,
              metrics: str | None, run_id: str | None, store_path: Path) -> None:
    """Score a folder of predictions as a cell of the store (keyed by the files' content)."""
    registry = registry_from(ctx)
    console = Console(stderr=True)
    ((ds_name, ds_params),) = parse_specs(dataset_text, list(registry.datasets), "dataset")
    name = name or source.resolve().stem
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name):
        raise click.BadParameter(f"{name!r}: use letters, digits and _ . + - (it names the entry)", param_hint="--name")
    if name in registry.methods:
        raise click.BadParameter(f"{name!r} is a method's name; pick another name for submitted predictions",
                                 param_hint="--name")
    store = Store(store_path)
    run = store.run(run_id) if run_id else None
    dataset = registry.dataset(ds_name, **ds_params)
    chosen = [m.strip() for m in metrics.split(",")] if metrics else None
    metric_names = applicable_metrics(registry, dataset.provides, KIND_PROVIDES[kind], chosen)
    if not metric_names:
        raise click.BadParameter(f"no metric applies to {kind} maps on {ds_name!r}", param_hint="--metrics")
    cache = store.file_hashes()
    content = dataset_content(dataset, cache)
    cache.save()
    fingerprint = {**dataset.fingerprint(), "content": content["sha256"]}
    files_sha = content_sha256(source)
    pkey = cell_key({"stage": "predict", "harness": harness.__version__, "submitted": name, "kind": kind,
                     "dataset": fingerprint, "predictions": files_sha})
    if store.stage(pkey) is None:
        try:
            stage = import_predictions(store, pkey, source, dataset, kind, name)  # type: ignore[arg-type]
        except (SubmissionError, DataError) as exc:
            raise click.ClickException(str(exc)) from None
        console.print(f"imported {stage['predictions']['images']} predictions from {source} "
                      f"({stage['predictions']['bytes_per_image'] / 1024:.1f} KiB per image stored)")
    key = cell_key({"predict": pkey, "metrics": {m: registry.metric(m).version for m in metric_names}})
    spec = CellSpec(dataset=ds_name, dataset_params=dict(ds_params), method=name, method_params={}, seed=0,
                    budget="quick", device="cpu", metrics=tuple(metric_names), eval_splits=tuple(dataset.eval_splits),
                    key=key, label=name, predict_key=pkey,
                    provenance={"submitted": True, "predictions_sha256": files_sha, "dataset_content": content,
                                "source": str(source)})
    record = store.cell(key) if store.is_finished(key) else execute_cell(spec, store.root, registry)
    if record is None or record.status is not Status.DONE:
        raise click.ClickException(f"scoring {source} failed: {record.error if record else 'no record'}")
    if run is None:
        run_id = dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        run = {"status": "finished", "cells": [], "cell_specs": [], "datasets": [[ds_name, dict(ds_params)]],
               "methods": [], "seeds": [0], "executor": "score", "dataset_info": {ds_name: dataset_info(dataset)},
               **provenance(registry)}
    manifest: dict[str, Any] = dict(run)
    if key not in manifest["cells"]:
        manifest["cells"] = [*manifest["cells"], key]
        manifest["cell_specs"] = [*manifest.get("cell_specs", []), spec.describe()]
        manifest.setdefault("dataset_info", {}).setdefault(ds_name, dataset_info(dataset))
        manifest.setdefault("submitted", []).append({"name": name, "source": str(source), "key": key})
    run_id = str(run_id if run_id and run_id != "latest" else run.get("run_id") or run_id)
    store.write_run(run_id, manifest)
    summary = ", ".join(f"{m} {v['value']:.4f}" for split in record["splits"].values()
                        for m, v in split.items() if "value" in v)
    console.print(f"{name} on {ds_name}: {summary}")
    console.print(f"run {run_id} in {store.root}; 'bench leaderboard --run {run_id}' ranks it")


@click.command("export")
@click.argument("run_id", default="latest")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Folder to write into.")
@click.option("--entry", "entries", multiple=True, help="Only these entries (labels as in the leaderboard).")
@click.option("--no-overlays", is_flag=True, help="Label maps only (overlays need the dataset's images).")
@click.option("--store", "store_path", type=click.Path(path_type=Path), envvar="BENCH_RUNS", default="runs", show_default=True)
@click.pass_context
def export_cmd(ctx: click.Context, run_id: str, out: Path, entries: tuple[str, ...], no_overlays: bool,
               store_path: Path) -> None:
    """Write a run's saved predictions as 16-bit PNG label maps and PNG overlays:
    OUT/<dataset>/<entry>/seed<k>/<split>/<id>.png (reference contours green, predicted magenta)."""
    registry = registry_from(ctx)
    store = Store(store_path)
    run = store.run(run_id)
    console = Console(stderr=True)
    count = 0
    for key in run["cells"]:
        record = store.cell(key)
        if record is None or record.get("status") != "done" or (entries and record["label"] not in entries):
            continue
        stage = store.stage(record.get("predict_key") or "")
        if stage is None:
            console.print(f"[yellow]{record['dataset']} · {record['label']} · seed {record['seed']}: no saved "
                          "predictions (recorded before they were kept); re-run it to export[/]")
            continue
        dataset = None
        if not no_overlays:
            try:
                dataset = registry.dataset(record["dataset"], **(record.get("dataset_params") or {}))
            except (PluginError, DataError) as exc:
                console.print(f"[yellow]no overlays for {record['dataset']}: {exc}[/]")
        folder = out / record["dataset"] / _safe(record["label"]) / f"seed{record['seed']}"
        try:
            written = export_stage(store, stage, folder, dataset, overlays=dataset is not None)
        except (DataError, SubmissionError, OSError) as exc:
            raise click.ClickException(f"cannot export {record['label']} to {folder}: {exc}") from None
        count += len(written)
        console.print(f"{record['dataset']} · {record['label']} · seed {record['seed']}: {len(written)} files in {folder}")
    if not count:
        raise click.ClickException(f"run {run['run_id']} has no saved predictions to export"
                                   + (f" for entries {', '.join(entries)}" if entries else ""))


def _safe(label: str) -> str:
    """A folder name for an entry label such as ``otsu(min_size=30)``."""
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", label).strip("_") or "entry"


COMMANDS = [score_cmd, export_cmd]
