"""Ranked leaderboards, laid out like the GlaS 2015 challenge table.

For each ranked metric and each evaluation split: a Score and a Rank column; then the sum of
ranks and the overall rank.  Ranking is standard competition ranking (ties share the best rank:
1, 2, 2, 4), computed on the scores as written in the CSV (rounded to ``DECIMALS``), in each
metric's direction.  Rows are sorted by the sum of ranks; equal sums share the overall rank and
are listed by entry name.  Entries that failed, were skipped or are incomplete (some image
failed) are listed with their status and not ranked.  Published results (``--reference``) are
ranked alongside measured ones and marked as published.  Everything is computed from stored
records: per-image statistics are reduced again here, never copied from cell summaries.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.runner import summarise_splits
from harness.store import Store, write_json_atomic, write_text_atomic
from harness.types import MetricSpec

DECIMALS = 4
TIE_BREAK = "equal sums of ranks share the overall rank and are listed by entry name"
PROFILE_COLUMNS = ("fit_s", "predict_s", "latency_p50_ms", "latency_p95_ms", "images_per_s", "peak_rss_mb",
                   "peak_gpu_mb")
#: What a learning entry's training did (from the training summary its cells record): the steps
#: run of the steps its budget allowed, what stopped training, the step whose checkpoint was kept, and the packaged pretrained
#: weights it started from ("none": random initialisation).  Empty for methods that do not learn
#: or record no summary.  Part of the result, not of the timing.
TRAINING_COLUMNS = ("steps", "max_steps", "stopped_by", "best_step", "pretrained")
#: How an entry's timings were taken: ``isolated`` (one cell at a time), ``concurrent:N`` (up to N
#: cells at once), ``mixed`` (its seeds differ), empty when the records do not say.
TIMING_COLUMN = "timing"
#: Columns that change from one measurement to the next without a change of result: a new
#: leaderboard version is written only when something else changed.
TIMING_ONLY = (*PROFILE_COLUMNS, TIMING_COLUMN)
#: The provenance that identifies what a leaderboard version measured (the rest, such as dates,
#: commits and machines, says how it was measured and does not make a new version alone).
IDENTITY = ("dataset", "dataset_version", "dataset_params", "dataset_splits", "seeds", "budget", "ranking",
            "reference", "cells")


@dataclass(frozen=True)
class RankedMetric:
    name: str
    higher_is_better: bool
    splits: tuple[str, ...]

    def columns(self) -> list[tuple[str, str]]:
        return [(f"{self.name}.{s}.score", f"{self.name}.{s}.rank") for s in self.splits]


@dataclass
class Row:
    entry: str
    source: str  # measured | submitted (predictions scored with bench score) | published
    status: str = "ok"
    method: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)
    scores: dict[str, float | None] = field(default_factory=dict)  # "metric.split" -> score
    profile: dict[str, float | None] = field(default_factory=dict)
    device: str = ""
    budget: str = ""
    timing: str = ""
    training: dict[str, str] = field(default_factory=dict)  # TRAINING_COLUMNS

    @property
    def rankable(self) -> bool:
        return self.status == "ok"


def competition_ranks(values: Sequence[float], higher_is_better: bool) -> list[int]:
    """Standard competition ranking ("1224"): ties share the best rank."""
    signed = [(-v if higher_is_better else v) for v in values]
    return [1 + sum(1 for other in signed if other < mine) for mine in signed]


def measured_rows(
    store: Store, cells: Sequence[Mapping[str, Any]], metrics: Sequence[RankedMetric], specs: Mapping[str, MetricSpec],
    missing: Sequence[Mapping[str, Any]] = (),
) -> list[Row]:
    """One row per entry (method + parameters) of one dataset's cell records, averaging split
    values over seeds; split values are reduced again from the stored per-image statistics.

    ``missing`` describes planned cells with no intact record (a running or aborted run, or a
    damaged cell): their entries are listed as ``missing`` and not ranked."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    absent: dict[str, list[Mapping[str, Any]]] = {}
    for record in cells:
        groups.setdefault(record["label"], []).append(record)
    for spec in missing:
        absent.setdefault(spec["label"], []).append(spec)
        groups.setdefault(spec["label"], [])
    splits = sorted({s for m in metrics for s in m.splits})
    used = [specs[m.name] for m in metrics]
    rows = []
    for label, records in sorted(groups.items()):
        if label in absent:
            gone = absent[label]
            first = gone[0]
            rows.append(Row(entry=label, source="measured", method=first.get("method", ""),
                            params=first.get("params", {}), seeds=sorted(r["seed"] for r in [*records, *gone]),
                            status=f"missing: {len(gone)} of {len(gone) + len(records)} cells have no intact result"))
            continue
        records = sorted(records, key=lambda r: r["seed"])
        row = Row(entry=label, source="submitted" if records[0].get("submitted") else "measured",
                  method=records[0]["method"], params=records[0]["params"],
                  seeds=[r["seed"] for r in records], device=records[0].get("device", ""),
                  budget=records[0].get("budget", "") if records[0].get("learns") else "")
        bad = [r for r in records if r["status"] != "done"]
        if bad:
            row.status = f"{bad[0]['status']}: {bad[0].get('error', '')}".strip()
            rows.append(row)
            continue
        per_seed: dict[str, list[float]] = {}
        failed = 0
        for record in records:
            summary = summarise_splits(store.images(record["key"]), used, splits)
            for m in metrics:
                for s in m.splits:
                    entry = summary.get(s, {}).get(m.name, {})
                    failed += int(entry.get("n_failed", 0))
                    if "value" in entry:
                        per_seed.setdefault(f"{m.name}.{s}", []).append(entry["value"])
        for m in metrics:
            for s in m.splits:
                vals = per_seed.get(f"{m.name}.{s}", [])
                row.scores[f"{m.name}.{s}"] = round(float(np.mean(vals)), DECIMALS) if len(vals) == len(records) else None
        if failed or any(v is None for v in row.scores.values()):
            row.status = f"incomplete: {failed} image/metric evaluations failed"
        row.timing = timing_of(records)
        row.training = training_of(records)
        for col in PROFILE_COLUMNS:
            present = [float(r[col]) for r in records if r.get(col) is not None]
            if present:
                row.profile[col] = round(max(present) if col.startswith("peak") else float(np.mean(present)), 3)
        rows.append(row)
    return rows


def training_of(records: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """:data:`TRAINING_COLUMNS` of an entry from its cells' training summaries; seeds that
    differ are joined with ``/`` (in seed order)."""
    summaries = [r.get("training") for r in records]
    if not summaries or not all(isinstance(s, Mapping) for s in summaries):
        return {}

    def one(summary: Mapping[str, Any], column: str) -> str:
        if column == "pretrained":
            resolved = summary.get("resolved") or {}
            return str(resolved.get("pretrained") or "none")
        if column == "max_steps":
            value = (summary.get("budget") or {}).get("max_steps")
            return "" if value is None else str(value)
        value = summary.get(column)
        return "" if value is None else str(value)

    out = {}
    for column in TRAINING_COLUMNS:
        values = [one(s, column) for s in summaries]  # type: ignore[arg-type]
        out[column] = values[0] if len(set(values)) == 1 else "/".join(values)
    return out


def timing_of(records: Sequence[Mapping[str, Any]]) -> str:
    """The ``timing`` value of an entry from its cell records (see :data:`TIMING_COLUMN`)."""
    modes = {r.get("timing") for r in records}
    if modes == {"isolated"}:
        return "isolated"
    if modes == {"concurrent"}:
        return f"concurrent:{max(int(r.get('concurrent_workers') or 2) for r in records)}"
    return "" if modes <= {None} else "mixed"


def reference_rows(
    path: Path, metrics: Sequence[RankedMetric], specs: Mapping[str, MetricSpec] | None = None
) -> list[Row]:
    """Published results: columns ``entry, split, <metric>…`` (one row per entry and split).

    A row with fewer or more fields than the header, a score that is not a finite number, or
    (with ``specs``) one outside its metric's range is a ``ValueError`` naming the file and line."""
    with io.StringIO(_text(path, "reference file "), newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        fields = [h.strip() for h in header or []]
        needed = {"entry", "split"} | {m.name for m in metrics}
        missing = needed - set(fields)
        if missing:
            raise ValueError(
                f"reference file {path}: missing column(s) {', '.join(sorted(missing))}; expected "
                f"'entry, split' and one column per ranked metric ({', '.join(m.name for m in metrics)})"
            )
        rows: dict[str, Row] = {}
        for values in reader:
            where = f"reference file {path}, line {reader.line_num}"
            if not values or not any(v.strip() for v in values):
                continue
            if len(values) != len(fields):
                raise ValueError(f"{where}: {len(values)} field(s), the header has {len(fields)} "
                                 f"({', '.join(fields)})")
            line = dict(zip(fields, (v.strip() for v in values), strict=True))
            row = rows.setdefault(line["entry"], Row(entry=line["entry"], source="published"))
            for m in metrics:
                if line["split"] in m.splits:
                    score = _reference_score(where, m.name, line[m.name], specs)
                    row.scores[f"{m.name}.{line['split']}"] = round(score, DECIMALS)
    for row in rows.values():
        for m in metrics:
            for s in m.splits:
                if row.scores.get(f"{m.name}.{s}") is None:
                    raise ValueError(f"reference file {path}: entry {row.entry!r} has no {m.name} for split {s!r}")
    return list(rows.values())


def _text(path: Path, what: str = "") -> str:
    """A CSV file's text; bytes that are not UTF-8 are a ``ValueError`` naming the file and line."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValueError(f"{what}{path}, line {line}: byte {data[exc.start]:#04x} is not UTF-8 text; "
                         "save the file as UTF-8") from None


def _reference_score(where: str, metric: str, text: str, specs: Mapping[str, MetricSpec] | None) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: {metric} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{where}: {metric} {text!r} is not a finite number")
    spec = (specs or {}).get(metric)
    if spec is not None:
        low, high = spec.range
        if not low <= value <= high:
            span = f"[{low:g}, {high:g}]" if math.isfinite(high) else f"at least {low:g}"
            raise ValueError(f"{where}: {metric} {text} is outside its range {span}")
    return value


def rank(rows: list[Row], metrics: Sequence[RankedMetric]) -> list[dict[str, Any]]:
    """Rank rows and return them as CSV-ready dicts, sorted as the table is read."""
    ranked = [r for r in rows if r.rankable]
    out: dict[int, dict[str, Any]] = {id(r): _base(r, metrics) for r in rows}
    for m in metrics:
        for score_col, rank_col in m.columns():
            key = score_col.rsplit(".", 1)[0]
            ranks = competition_ranks([float(r.scores[key] or 0.0) for r in ranked], m.higher_is_better)
            for r, k in zip(ranked, ranks, strict=False):
                out[id(r)][rank_col] = k
    sums = [sum(out[id(r)][rc] for m in metrics for _, rc in m.columns()) for r in ranked]
    finals = competition_ranks(sums, higher_is_better=False)
    for r, total, final in zip(ranked, sums, finals, strict=False):
        out[id(r)]["rank_sum"] = total
        out[id(r)]["rank"] = final
    ordered = sorted(ranked, key=lambda r: (out[id(r)]["rank"], r.entry)) + sorted(
        (r for r in rows if not r.rankable), key=lambda r: r.entry
    )
    return [out[id(r)] for r in ordered]


def _base(row: Row, metrics: Sequence[RankedMetric]) -> dict[str, Any]:
    d: dict[str, Any] = {
        "rank": "", "entry": row.entry, "source": row.source, "status": row.status, "method": row.method,
        "params": json.dumps(row.params, sort_keys=True) if row.source != "published" else "",
        "seeds": " ".join(map(str, row.seeds)), "budget": row.budget,
    }
    for m in metrics:
        for score_col, rank_col in m.columns():
            score = row.scores.get(score_col.rsplit(".", 1)[0])
            d[score_col] = "" if score is None else f"{score:.{DECIMALS}f}"
            d[rank_col] = ""
    d["rank_sum"] = ""
    for col in PROFILE_COLUMNS:
        v = row.profile.get(col)
        d[col] = "" if v is None else v
    d[TIMING_COLUMN] = row.timing
    d["device"] = row.device
    for col in TRAINING_COLUMNS:
        d[col] = row.training.get(col, "")
    return d


def columns(metrics: Sequence[RankedMetric]) -> list[str]:
    cols = ["rank", "entry", "source", "status", "method", "params", "seeds", "budget"]
    for m in metrics:
        for score_col, rank_col in m.columns():
            cols += [score_col, rank_col]
    return cols + ["rank_sum", *PROFILE_COLUMNS, TIMING_COLUMN, "device", *TRAINING_COLUMNS]


def to_csv(table: Sequence[Mapping[str, Any]], metrics: Sequence[RankedMetric], extra: Sequence[str] = ()) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*columns(metrics), *extra], lineterminator="\n")
    writer.writeheader()
    for row in table:
        writer.writerow(row)
    return buf.getvalue()


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a leaderboard (or profile) CSV as dicts; a row with fewer or more fields than
    the header is a ``ValueError`` naming the file and line (a cut-off row would otherwise
    read as empty scores)."""
    with io.StringIO(_text(path), newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            return []
        rows = []
        for values in reader:
            if not values:
                continue
            if len(values) != len(header):
                raise ValueError(f"{path}, line {reader.line_num}: {len(values)} field(s), the header has "
                                 f"{len(header)}; is the file cut off or edited by hand?")
            rows.append(dict(zip(header, values, strict=True)))
        return rows


def same_result(folder: Path, csv_text: str, provenance: Mapping[str, Any]) -> bool:
    """True when the version in ``folder`` has the same entries, scores, ranks and identifying
    provenance (:data:`IDENTITY`) as ``csv_text`` and ``provenance``: the timing columns
    (:data:`TIMING_ONLY`) may differ, since they change from one measurement to the next."""
    table, prov = folder / "leaderboard.csv", folder / "run.json"
    if not (table.is_file() and prov.is_file()):
        return False

    def result(rows: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
        return [{k: v for k, v in r.items() if k not in TIMING_ONLY} for r in rows]

    def header(rows: Sequence[str]) -> list[str]:
        return [c for c in rows if c not in TIMING_ONLY]

    new_rows = list(csv.DictReader(io.StringIO(csv_text)))
    old_rows = read_csv(table)
    new_header = next(csv.reader(io.StringIO(csv_text)), [])
    with open(table, newline="") as fh:
        old_header = next(csv.reader(fh), [])
    if header(new_header) != header(old_header) or result(new_rows) != result(old_rows):
        return False
    stored = json.loads(prov.read_text())
    fresh = json.loads(json.dumps(dict(provenance), default=_plain))  # as it would be stored
    return all(stored.get(k) == fresh.get(k) for k in IDENTITY)


def _plain(obj: Any) -> Any:
    return obj.item() if hasattr(obj, "item") else str(obj)


def write_version(
    out_root: Path, dataset: str, csv_text: str, provenance: Mapping[str, Any], version: str | None = None,
    files: Mapping[str, str] | None = None,
) -> tuple[Path, bool]:
    """Write ``<out_root>/<dataset>/<version>/`` and point ``LATEST`` at it.

    Without ``version`` the next ``vN`` is used, unless the latest version holds the same result
    (:func:`same_result`: only timings differ; then nothing new is written).  ``files`` (name →
    text, e.g. the run's ``suite.toml``) are written beside the table.  Returns (folder, whether
    a new version was written).
    """
    from harness.report import render_markdown  # local import: report depends on this module

    base = out_root / dataset
    latest_file = base / "LATEST"
    if version is None:
        if latest_file.is_file():
            latest = base / latest_file.read_text().strip()
            if same_result(latest, csv_text, provenance):
                return latest, False
        existing = [int(p.name[1:]) for p in base.glob("v*") if p.is_dir() and p.name[1:].isdigit()]
        version = f"v{max(existing, default=0) + 1}"
    folder = base / version
    for name, text in (files or {}).items():
        write_text_atomic(folder / name, text)
    write_text_atomic(folder / "leaderboard.csv", csv_text)
    write_json_atomic(folder / "run.json", {**provenance, "leaderboard_version": version})
    write_text_atomic(folder / "leaderboard.md", render_markdown(folder))
    write_text_atomic(latest_file, version + "\n")
    return folder, True


PER_IMAGE_COLUMNS = ("entry", "seed", "split", "sample_id", "metric", "value")


def per_image_values(
    store: Store, cells: Sequence[Mapping[str, Any]], metrics: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Per-image metric values of cell records in long format (entry, seed, split, sample id,
    metric, value), sorted; the input of per-image statistics such as bootstrap intervals.

    Only image-level values are listed (split-level metrics have no per-image value); an image
    whose metric failed is absent for that metric.
    """
    out = []
    for record in cells:
        for row in store.images(record["key"]):
            for name, value in sorted((row.get("values") or {}).items()):
                if metrics is not None and name not in metrics:
                    continue
                out.append({"entry": record["label"], "seed": record["seed"], "split": row["split"],
                            "sample_id": row["sample_id"], "metric": name, "value": value})
    out.sort(key=lambda r: (r["entry"], r["seed"], r["split"], r["sample_id"], r["metric"]))
    return out


def per_image_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """``per_image.csv`` text of :func:`per_image_values` rows (values with full precision)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(PER_IMAGE_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({**r, "value": repr(float(r["value"])) if r["value"] is not None else ""})
    return buf.getvalue()

