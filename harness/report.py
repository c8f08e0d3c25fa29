"""Markdown generated from a leaderboard folder (``leaderboard.csv`` + ``run.json``) alone."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import uncertainty
from harness.leaderboard import PROFILE_COLUMNS, TIE_BREAK, TIMING_COLUMN, TRAINING_COLUMNS, read_csv

PROFILE_TITLES = {
    "fit_s": "Fit (s)",
    "predict_s": "Predict (s)",
    "latency_p50_ms": "p50 (ms)",
    "latency_p95_ms": "p95 (ms)",
    "images_per_s": "img/s",
    "peak_rss_mb": "Peak RSS (MiB)",
    "peak_gpu_mb": "Peak GPU (MiB)",
}


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def _budget(budget: Any, rows: Sequence[Mapping[str, str]] = ()) -> str:
    """The run's training budget for the footer.  Its limits are per method by default; when an
    entry trained under other limits (its own ``steps``), the footer says so and points to the
    Training table, which lists each entry's."""
    if not budget:
        return ""
    limits = []
    if budget.get("max_steps"):
        limits.append(f"{budget['max_steps']} steps")
    if budget.get("max_seconds"):
        limits.append(f"{budget['max_seconds']:g} s")
    if not limits:
        return f", training budget '{budget['name']}'"
    own = any(r.get("max_steps") and str(r["max_steps"]) != str(budget.get("max_steps"))
              for r in rows if r.get("source") == "measured")
    own_steps = "; entries that set their own steps are in the Training table" if own else ""
    return f", training budget '{budget['name']}' (at most {' / '.join(limits)} per method{own_steps})"


CONCURRENT_MARK = "‡"


def timing_mark(row: Mapping[str, str]) -> str:
    """`` ‡`` after the timings of an entry timed (in part) beside other cells, else nothing."""
    value = row.get(TIMING_COLUMN) or ""
    return f" {CONCURRENT_MARK}" if value.startswith("concurrent") or value == "mixed" else ""


def timing_footer(rows: Sequence[Mapping[str, str]], profile: Sequence[str]) -> str:
    """One line saying how the shown timings were taken; empty for a table written before
    timings were marked (no ``timing`` column) or showing no timings."""
    if not profile or not rows or TIMING_COLUMN not in rows[0]:
        return ""
    timed = [r for r in rows if r["source"] == "measured" and any(r.get(c) for c in profile)]
    if not timed:
        return ""
    values = [r.get(TIMING_COLUMN) or "" for r in timed]
    unknown = sorted(r["entry"] for r, v in zip(timed, values, strict=True) if not v)
    mixed = sorted(r["entry"] for r, v in zip(timed, values, strict=True) if v == "mixed")
    workers = [int(v.split(":", 1)[1]) for v in values if v.startswith("concurrent:")]
    isolated = values.count("isolated")
    parts = []
    if not workers and not mixed:
        parts.append("Timings: every timed cell ran alone (isolated)" if isolated else "")
    else:
        most = f"up to {max(workers)} cells" if workers else "other cells"
        parts.append(f"{CONCURRENT_MARK} timed while {most} ran at once (concurrent: `--jobs` above 1, Ray or "
                     "SLURM); such timings are not comparable with isolated ones")
        if mixed:
            parts.append(f"{', '.join(f'`{e}`' for e in mixed)}: some seeds timed alone, some concurrently")
        if isolated:
            parts.append("unmarked timings were taken with each cell alone (isolated)")
    if unknown:
        parts.append(f"not recorded whether isolated or concurrent: {', '.join(f'`{e}`' for e in unknown)}")
    return "; ".join(p for p in parts if p) + "."


def training_table(rows: Sequence[Mapping[str, str]]) -> list[str]:
    """Markdown lines: per learning entry, its budget, the steps it ran, what stopped it, the
    step whose checkpoint it kept, its packaged pretrained weights, and its fit and prediction
    wall time (``Fit (s)`` and ``Predict (s)``: over every evaluation image).  Empty when no
    entry recorded a training summary (or for a table written before these columns)."""
    learned = [r for r in rows if r["source"] == "measured" and r.get("steps")]
    if not learned:
        return []
    out = ["", "Training (learning entries; steps, stop and checkpoint from each cell's training summary; "
           "pretrained: packaged weights the network started from, none = random initialisation):", "",
           "| Entry | Budget | Steps run | of | Stopped by | Kept step | Pretrained | Fit (s) | Predict (s) |",
           "| :--- | :--- | ---: | ---: | :--- | ---: | :--- | ---: | ---: |"]
    for r in learned:
        cells = [f"`{r['entry']}`", r.get("budget", ""), *(r.get(c, "") for c in TRAINING_COLUMNS),
                 r.get("fit_s", ""), r.get("predict_s", "")]
        out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return out


def render_markdown(folder: Path) -> str:
    rows = read_csv(folder / "leaderboard.csv")
    with open(folder / "run.json") as fh:
        prov: dict[str, Any] = json.load(fh)
    ranking = prov["ranking"]
    metrics = ranking["metrics"]
    spread = prov.get("uncertainty")
    lines = [f"# Leaderboard: {prov['dataset']} ({prov.get('leaderboard_version', '')})", ""]
    header = ["Rank", "Entry"]
    align = ["---:", ":---"]
    for m in metrics:
        arrow = "↑" if m["higher_is_better"] else "↓"
        for split in m["splits"]:
            header += [f"{m['name']} {arrow} {split}", "rank"]
            align += ["---:", "---:"]
    header.append("Sum of ranks")
    align.append("---:")
    profile = [c for c in PROFILE_COLUMNS if any(r.get(c) for r in rows)]
    header += [PROFILE_TITLES[c] for c in profile] + ["Status"]
    align += ["---:"] * len(profile) + [":---"]
    lines += ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    for r in rows:
        name = r["entry"] + {"published": " †", "submitted": " §"}.get(r["source"], "")
        cells = [r["rank"], f"`{name}`" if r["source"] != "published" else name]
        if spread:
            cells[0] = uncertainty.rank_cell(r, "", r["rank"], spread["alpha"], mark=True)
        for m in metrics:
            for split in m["splits"]:
                col = f"{m['name']}.{split}"
                if spread:
                    cells += [uncertainty.score_cell(r, col, spread["alpha"]), uncertainty.rank_cell(r, f"{col}.", r[f"{col}.rank"])]
                else:
                    cells += [r[f"{col}.score"], r[f"{col}.rank"]]
        cells.append(r["rank_sum"])
        mark = timing_mark(r)
        cells += [r.get(c, "") + (mark if r.get(c) else "") for c in profile]
        cells.append(r["status"])
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += [
        "",
        f"Ranks: standard competition ranking per column (ties share the best rank); {TIE_BREAK}. "
        "↑ higher is better, ↓ lower is better. Entries that failed, were skipped or are "
        "incomplete are listed and not ranked. † published result"
        + (f" ({prov['reference']['citation']})" if prov.get("reference", {}).get("citation") else "")
        + (". § predictions submitted with `bench score` (scored by segbench, not timed)"
           if any(r["source"] == "submitted" for r in rows) else "")
        + ". Timing and memory are measured, not ranked.",
        "",
        f"Measured with segbench {prov['segbench']['version']} (commit {prov['segbench'].get('commit') or 'unknown'}"
        + (", dirty" if prov["segbench"].get("dirty") else "")
        + f") on {prov['machine'].get('cpu', '')} ({prov['machine'].get('cpu_count', '?')} cores"
        + (f", GPU {prov['machine']['gpu']}" if prov["machine"].get("gpu") else ", no GPU")
        + f"), seeds {', '.join(map(str, prov.get('seeds', [])))}"
        + _budget(prov.get("budget"), rows)
        + f", {prov.get('date', '')}. Provenance in run.json.",
    ]
    if prov.get("run_status") not in (None, "finished"):
        lines += ["", f"**Run {prov.get('run_id')} is {prov['run_status']}**: entries without intact results "
                  "are listed as missing and not ranked; this table is not final."]
    footer = timing_footer(rows, profile)
    if footer:
        lines += ["", footer]
    if (folder / "suite.toml").is_file():
        lines += ["", "Reproduce with `bench run --config suite.toml` (the suite file of the run, beside this table), "
                  "then `bench leaderboard`."]
    lines += training_table(rows)
    if spread:
        lines += ["", *uncertainty.footer(spread), *uncertainty.per_seed_table(rows, metrics)]
    notes = prov.get("notes")
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"
