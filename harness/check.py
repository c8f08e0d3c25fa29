"""Regression gate: compare current leaderboard scores with a baseline leaderboard, or a new
speed and memory profile with a baseline profile.

A measured baseline entry regresses when it disappeared, did not finish ("failed"), or when
one of its scores moved in the metric's bad direction by more than the tolerance (absolute, or
relative to the baseline score with a trailing ``%``).  Published rows are not checked.

Timing and memory columns (of a leaderboard or a profile) take relative tolerances only, read
as a factor: ``25%`` allows the value to be up to 1.25 times worse than the baseline, in the
column's direction (a latency or a peak up to 1.25 × the baseline, a throughput down to the
baseline / 1.25), so ``300%`` lets a CI machine be four times slower and still catches a
tenfold slowdown.
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
            if profile:
                if worse_factor(b, c, better) > 1 + tol.amount + 1e-12:
                    findings.append(Finding(entry, column, value, c_text, change,
                                            f"worse by more than {_describe(tol)}"))
                continue
            if worse > tol.allowed(b) + 1e-12:
                findings.append(Finding(entry, column, value, c_text, change, f"worse by more than {_describe(tol)}"))
            elif worse < -1e-12 and not profile:
                findings.append(Finding(entry, column, value, c_text, change, "better", kind="improvement"))
    return findings


def _describe(tol: Tolerance) -> str:
    return f"{tol.amount * 100:g}%" if tol.relative else f"{tol.amount:g}"


def worse_factor(baseline: float, current: float, higher_is_better: bool) -> float:
    """How many times worse ``current`` is than ``baseline`` (below 1: better): current over
    baseline for a column where lower is better, baseline over current otherwise."""
    num, den = (baseline, current) if higher_is_better else (current, baseline)
    if den <= 0:
        return 1.0 if num <= 0 else math.inf
    return num / den


# ---- profiles (``bench profile`` tables) --------------------------------------------------

#: Columns of a profile.csv that can be gated, and whether a larger value is better.
PROFILE_CSV_COLUMNS = {
    **{f"latency_batch_{s}_ms": False for s in ("p50", "p95", "p99", "mean")},
    **{f"latency_image_{s}_ms": False for s in ("p50", "p95", "p99")},
    "images_per_s": True,
    "megapixels_per_s": True,
    "peak_rss_mb": False,
    "gpu_allocated_mb": False,
    "gpu_reserved_mb": False,
}
#: The leaderboard's latency names, which in a profile mean the latency per image.
PROFILE_ALIASES = {f"latency_{s}_ms": f"latency_image_{s}_ms" for s in ("p50", "p95", "p99")}
#: What identifies a configuration of a profile: one row of the baseline per value of these.
CONFIGURATION = ("method", "input", "height", "width", "mode", "device", "requested_batch_size")


@dataclass(frozen=True)
class ProfileComparison:
    """One gated value of one configuration (``column`` ``status`` / ``batch_size``: the
    configuration itself did not run as in the baseline)."""

    configuration: str
    column: str
    baseline: str
    current: str
    ratio: float | None  # current / baseline
    allowed: str  # the tolerance, as given
    regression: bool
    problem: str = ""


def profile_column(name: str) -> str:
    return PROFILE_ALIASES.get(name, name)


def check_profile_baseline(rows: Sequence[Mapping[str, str]], path: object) -> int:
    """The number of configurations of a baseline profile that ran (status ok); ``ValueError``
    naming ``path`` for a file that is not a usable profile.csv."""
    if not rows:
        raise ValueError(f"baseline profile {path} has no rows; expected a profile.csv written by 'bench profile'")
    missing = [c for c in (*CONFIGURATION, "status") if c not in rows[0]]
    if missing:
        raise ValueError(f"baseline profile {path} lacks the column(s) {', '.join(missing)}; is it a profile.csv?")
    ran = sum(1 for r in rows if r.get("status") == "ok")
    if ran == 0:
        raise ValueError(f"baseline profile {path} has no configuration with status ok; there is nothing to check")
    return ran


def check_profile_tolerances(tolerances: Mapping[str, Tolerance], baseline: Sequence[Mapping[str, str]],
                             path: object) -> None:
    """``ValueError`` for a tolerance that names no gateable column of the baseline profile, or
    that is absolute."""
    present = [c for c in PROFILE_CSV_COLUMNS if baseline and c in baseline[0]]
    for name, tol in tolerances.items():
        column = profile_column(name)
        if column not in present:
            raise ValueError(f"--tolerance {name}: not a timing or memory column of the baseline profile {path}; "
                             f"columns: {', '.join(present)} (or {', '.join(PROFILE_ALIASES)})")
        if not tol.relative:
            raise ValueError(f"--tolerance {name}: profile columns take a relative tolerance, e.g. {name}=300%")


def configuration_name(row: Mapping[str, str]) -> str:
    return (f"{row.get('method')} · {row.get('input')} {row.get('height')}x{row.get('width')} · {row.get('mode')}"
            f" · {row.get('device')} · batch {row.get('requested_batch_size')}")


def compare_profiles(
    baseline: Sequence[Mapping[str, str]],
    current: Sequence[Mapping[str, str]],
    tolerances: Mapping[str, Tolerance],
) -> list[ProfileComparison]:
    """Every gated value of every configuration that ran in ``baseline``, with its ratio.

    A configuration regresses when it is missing from ``current``, did not run there (out of
    memory, error), had to halve its batch where the baseline did not, or when a column named
    by ``tolerances`` is worse than the baseline by more than its factor."""
    def key(row: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(str(row.get(c, "")) for c in CONFIGURATION)

    now = {key(r): r for r in current}
    gated = {profile_column(n): (n, t) for n, t in tolerances.items()}
    out: list[ProfileComparison] = []
    for base in baseline:
        if base.get("status") != "ok":
            continue
        name = configuration_name(base)
        cur = now.get(key(base))
        if cur is None:
            out.append(ProfileComparison(name, "status", "ok", "missing", None, "", True, "configuration not profiled"))
            continue
        if cur.get("status") != "ok":
            out.append(ProfileComparison(name, "status", "ok", cur.get("status", ""), None, "", True,
                                         f"did not run: {cur.get('note') or cur.get('status')}"))
            continue
        if cur.get("batch_size") != base.get("batch_size"):
            out.append(ProfileComparison(name, "batch_size", base.get("batch_size", ""), cur.get("batch_size", ""),
                                         None, "", True, f"ran at another batch size: {cur.get('note', '')}".rstrip(": ")))
            continue
        for column, (given, tol) in gated.items():
            b, c = _number(base.get(column)), _number(cur.get(column))
            b_text, c_text = base.get(column, ""), cur.get(column, "")
            allowed = f"{given}={_describe(tol)}"
            if b is None:  # not measured in the baseline (say GPU memory of a CPU profile)
                continue
            if not math.isfinite(b):
                out.append(ProfileComparison(name, column, b_text, c_text, None, allowed, True,
                                             "baseline value is not a finite number"))
                continue
            if c is None or not math.isfinite(c):
                out.append(ProfileComparison(name, column, b_text, c_text or "missing", None, allowed, True,
                                             "value missing or not a finite number"))
                continue
            factor = worse_factor(b, c, PROFILE_CSV_COLUMNS[column])
            ratio = c / b if b else (1.0 if c == 0 else math.inf)
            bad = factor > 1 + tol.amount + 1e-12
            problem = f"{factor:.2f}x worse, more than {1 + tol.amount:g}x allowed" if bad else ""
            out.append(ProfileComparison(name, column, b_text, c_text, ratio, allowed, bad, problem))
    return out


def setting_differences(baseline: Mapping[str, object], current: Mapping[str, object]) -> list[str]:
    """What differs between the settings of two profiles' provenance (``provenance.json``):
    repeats, warm-up, images, batch sizes, inputs, threads.  Not a regression, but a reason
    the numbers may not be comparable."""
    out = []
    for part, keys in (("settings", ("warmup", "repeats", "images", "batch_sizes", "inputs")),
                       ("environment", ("threads",))):
        b = baseline.get(part) or {}
        c = current.get(part) or {}
        assert isinstance(b, Mapping) and isinstance(c, Mapping)
        for k in keys:
            if b.get(k) != c.get(k):
                out.append(f"{k}: baseline {b.get(k)!r}, current {c.get(k)!r}")
    return out
