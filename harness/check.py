"""Regression gate: compare current leaderboard scores with a baseline leaderboard.

A measured baseline entry regresses when it disappeared, did not finish ("failed"), or when
one of its scores moved in the metric's bad direction by more than the tolerance (absolute, or
relative to the baseline score with a trailing ``%``).  Published rows are not checked.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

#: Profile columns that may be gated with a relative tolerance (never by default), and whether
#: a larger value is better.
PROFILE_COLUMNS = {
    "fit_s": False,
    "latency_p50_ms": False,
    "latency_p95_ms": False,
    "images_per_s": True,
    "peak_rss_mb": False,
    "peak_gpu_mb": False,
}
REQUIRED_COLUMNS = ("entry", "source", "status")


@dataclass(frozen=True)
class Tolerance:
    amount: float = 0.0
    relative: bool = False

    @classmethod
    def parse(cls, text: str) -> Tolerance:
        text = text.strip()
        try:
            relative = text.endswith("%")
            amount = float(text[:-1]) / 100.0 if relative else float(text)
        except ValueError:
            raise ValueError(f"tolerance {text!r} is not a number or a percentage (e.g. 0.01 or 2%)") from None
        if not math.isfinite(amount) or amount < 0:
            raise ValueError(f"tolerance {text!r} must be a finite amount of at least 0 (e.g. 0.01 or 2%)")
        return cls(amount, relative=relative)

    def allowed(self, baseline: float) -> float:
        return abs(baseline) * self.amount if self.relative else self.amount


@dataclass(frozen=True)
class Finding:
    entry: str
    column: str
    baseline: str
    current: str
    change: str
    problem: str
    kind: str = "regression"


def parse_tolerances(items: Sequence[str]) -> dict[str, Tolerance]:
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--tolerance {item!r}: expected METRIC=AMOUNT (e.g. dice=0.01 or object_hausdorff=5%)")
        name, amount = item.split("=", 1)
        out[name.strip()] = Tolerance.parse(amount)
    return out


def check_baseline(rows: Sequence[Mapping[str, str]], path: object) -> int:
    """The number of measured, finished entries of a baseline; ``ValueError`` (naming
    ``path``) for a baseline that could not gate anything: empty, missing the required
    columns, without score columns or without a measured entry."""
    if not rows:
        raise ValueError(f"baseline {path} has no rows; expected a leaderboard.csv written by 'bench leaderboard'")
    missing = [c for c in REQUIRED_COLUMNS if c not in rows[0]]
    if missing:
        raise ValueError(f"baseline {path} lacks the column(s) {', '.join(missing)}; is it a leaderboard.csv?")
    if not any(c.endswith(".score") for c in rows[0]):
        raise ValueError(f"baseline {path} has no METRIC.SPLIT.score column; is it a leaderboard.csv?")
    measured = sum(1 for r in rows if r.get("source") == "measured" and r.get("status") == "ok")
    if measured == 0:
        raise ValueError(f"baseline {path} has no measured entry with status ok; there is nothing to check")
    return measured


def check_tolerances(tolerances: Mapping[str, Tolerance], baseline: Sequence[Mapping[str, str]]) -> None:
    """``ValueError`` for a tolerance naming no metric of the baseline (a typo would otherwise
    leave the real metric at tolerance 0) or an absolute tolerance on a profile column."""
    metrics = sorted({c.split(".", 1)[0] for c in (baseline[0] if baseline else {}) if c.endswith(".score")})
    for name, tol in tolerances.items():
        if name in PROFILE_COLUMNS:
            if not tol.relative:
                raise ValueError(f"--tolerance {name}: profile columns take a relative tolerance, e.g. {name}=25%")
            continue
        if name not in metrics:
            raise ValueError(
                f"--tolerance {name}: no such metric in the baseline; metrics: {', '.join(metrics)}; "
                f"profile columns: {', '.join(PROFILE_COLUMNS)}"
            )


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in ("", None) else None
    except ValueError:
        return math.nan


def compare(
    baseline: Sequence[Mapping[str, str]],
    current: Sequence[Mapping[str, str]],
    higher_is_better: Callable[[str], bool],
    tolerances: Mapping[str, Tolerance] | None = None,
    default: Tolerance = Tolerance(),
) -> list[Finding]:
    """Every regression of ``current`` against ``baseline`` (empty list: no regression)."""
    return [f for f in changes(baseline, current, higher_is_better, tolerances, default) if f.kind == "regression"]


def changes(
    baseline: Sequence[Mapping[str, str]],
    current: Sequence[Mapping[str, str]],
    higher_is_better: Callable[[str], bool],
    tolerances: Mapping[str, Tolerance] | None = None,
    default: Tolerance = Tolerance(),
) -> list[Finding]:
    """Regressions and improvements (``Finding.kind``) of ``current`` against ``baseline``.

    A current score that is not a finite number is a regression; profile columns are compared
    only when ``tolerances`` names them.
    """
    tolerances = tolerances or {}
    now = {r["entry"]: r for r in current if r.get("source") == "measured"}
    findings = []
    for base in baseline:
        if base.get("source") != "measured" or base.get("status") != "ok":
            continue
        entry = base["entry"]
        cur = now.get(entry)
        if cur is None:
            findings.append(Finding(entry, "", "present", "missing", "", "entry disappeared"))
            continue
        if cur.get("status") != "ok":
            findings.append(Finding(entry, "status", "ok", cur.get("status", ""), "", "entry failed"))
            continue
        for column, value in base.items():
            profile = column in PROFILE_COLUMNS and column in tolerances
            if not (column.endswith(".score") or profile) or value in ("", None):
                continue
            metric = column if profile else column.split(".", 1)[0]
            b = _number(value)
            c_text = cur.get(column, "")
            c = _number(c_text)
            if b is None or not math.isfinite(b):
                findings.append(Finding(entry, column, value, c_text or "", "", "baseline score is not a finite number"))
                continue
            if c is None:
                findings.append(Finding(entry, column, value, "missing", "", "score missing"))
                continue
            if not math.isfinite(c):
                findings.append(Finding(entry, column, value, c_text, "", "score is not a finite number"))
                continue
            better = PROFILE_COLUMNS[column] if profile else higher_is_better(metric)
            worse = (b - c) if better else (c - b)
            tol = tolerances.get(metric, default)
            change = f"{c - b:+.4g}" + (f" ({(c - b) / b:+.1%})" if b else "")
            if worse > tol.allowed(b) + 1e-12:
                findings.append(Finding(entry, column, value, c_text, change, f"worse by more than {_describe(tol)}"))
            elif worse < -1e-12 and not profile:
                findings.append(Finding(entry, column, value, c_text, change, "better", kind="improvement"))
    return findings


def _describe(tol: Tolerance) -> str:
    return f"{tol.amount * 100:g}%" if tol.relative else f"{tol.amount:g}"
