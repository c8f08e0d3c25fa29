"""Regression gate: compare current leaderboard scores with a baseline leaderboard.

A measured baseline entry regresses when it disappeared, did not finish ("failed"), or when
one of its scores moved in the metric's bad direction by more than the tolerance (absolute, or
relative to the baseline score with a trailing ``%``).  Published rows are not checked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerance:
    amount: float = 0.0
    relative: bool = False

    @classmethod
    def parse(cls, text: str) -> Tolerance:
        text = text.strip()
        try:
            if text.endswith("%"):
                return cls(float(text[:-1]) / 100.0, relative=True)
            return cls(float(text))
        except ValueError:
            raise ValueError(f"tolerance {text!r} is not a number or a percentage (e.g. 0.01 or 2%)") from None

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


def parse_tolerances(items: Sequence[str]) -> dict[str, Tolerance]:
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--tolerance {item!r}: expected METRIC=AMOUNT (e.g. dice=0.01 or object_hausdorff=5%)")
        name, amount = item.split("=", 1)
        out[name.strip()] = Tolerance.parse(amount)
    return out


def compare(
    baseline: Sequence[Mapping[str, str]],
    current: Sequence[Mapping[str, str]],
    higher_is_better: Callable[[str], bool],
    tolerances: Mapping[str, Tolerance] | None = None,
    default: Tolerance = Tolerance(),
) -> list[Finding]:
    """Every regression of ``current`` against ``baseline`` (empty list: no regression)."""
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
            if not column.endswith(".score") or value in ("", None):
                continue
            metric = column.split(".", 1)[0]
            b = float(value)
            c_text = cur.get(column, "")
            if c_text in ("", None):
                findings.append(Finding(entry, column, value, "missing", "", "score missing"))
                continue
            c = float(c_text)
            worse = (b - c) if higher_is_better(metric) else (c - b)
            tol = tolerances.get(metric, default)
            if worse > tol.allowed(b) + 1e-12:
                change = f"{c - b:+.4g}" + (f" ({(c - b) / b:+.1%})" if b else "")
                findings.append(Finding(entry, column, value, c_text, change, f"worse by more than {_describe(tol)}"))
    return findings


def _describe(tol: Tolerance) -> str:
    return f"{tol.amount * 100:g}%" if tol.relative else f"{tol.amount:g}"
