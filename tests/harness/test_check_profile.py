"""The profile gate: configurations matched, directions per column, factor tolerances, the CLI."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from harness.check import (
    check_profile_baseline,
    check_profile_tolerances,
    compare_profiles,
    parse_tolerances,
    worse_factor,
)
from tests.conftest import REPO

HEADER = ["method", "input", "height", "width", "mode", "device", "status", "note", "requested_batch_size", "batch_size", "repeats", "latency_image_p50_ms", "images_per_s", "peak_rss_mb", "gpu_allocated_mb"]


def prow(method: str, p50: str, ips: str, rss: str = "100.0", batch: str = "1", ran: str | None = None,
         status: str = "ok", note: str = "") -> dict[str, str]:
    return {"method": method, "input": "dsb2018-sample", "height": "256", "width": "256", "mode": "inference",
            "device": "cpu", "status": status, "note": note, "requested_batch_size": batch,
            "batch_size": batch if ran is None else ran, "repeats": "5", "latency_image_p50_ms": p50,
            "images_per_s": ips, "peak_rss_mb": rss, "gpu_allocated_mb": ""}


BASE = [prow("otsu", "10.0", "100.0"), prow("kmeans", "200.0", "5.0"), prow("kmeans", "180.0", "5.5", batch="4")]


def test_worse_factor_follows_the_direction() -> None:
    assert worse_factor(10.0, 40.0, higher_is_better=False) == 4.0  # latency four times longer
    assert worse_factor(100.0, 25.0, higher_is_better=True) == 4.0  # throughput a quarter
    assert worse_factor(10.0, 5.0, higher_is_better=False) == 0.5  # twice as fast: better
    assert worse_factor(0.0, 0.0, higher_is_better=False) == 1.0


def test_ratios_of_every_gated_value_and_regressions_beyond_the_factor() -> None:
    tol = parse_tolerances(["latency_p50_ms=300%", "images_per_s=300%"])  # alias of latency_image_p50_ms
    # otsu 3.5x slower (within 4x); kmeans batch 1 ten times slower; kmeans batch 4 faster
    cur = [prow("otsu", "35.0", "28.0"), prow("kmeans", "2000.0", "0.5"), prow("kmeans", "90.0", "11.0", batch="4")]
    found = compare_profiles(BASE, cur, tol)
    ratios = {(f.configuration.split(" · ")[0], f.configuration.endswith("batch 4"), f.column): f.ratio for f in found}
    assert ratios == {
        ("otsu", False, "latency_image_p50_ms"): pytest.approx(3.5), ("otsu", False, "images_per_s"): pytest.approx(0.28),
        ("kmeans", False, "latency_image_p50_ms"): pytest.approx(10.0), ("kmeans", False, "images_per_s"): pytest.approx(0.1),
        ("kmeans", True, "latency_image_p50_ms"): pytest.approx(0.5), ("kmeans", True, "images_per_s"): pytest.approx(2.0),
    }
    bad = [(f.configuration.split(" · ")[0], f.column) for f in found if f.regression]
    assert bad == [("kmeans", "latency_image_p50_ms"), ("kmeans", "images_per_s")]
    assert "10.00x worse, more than 4x allowed" in next(f.problem for f in found if f.regression)
    # a 25% tolerance catches otsu's 3.5x
    strict = compare_profiles(BASE, cur, parse_tolerances(["latency_image_p50_ms=25%"]))
    assert [f.configuration.split(" · ")[0] for f in strict if f.regression] == ["otsu", "kmeans"]


def test_missing_failed_and_halved_configurations_regress_columns_not_asked_are_not_gated() -> None:
    cur = [prow("otsu", "500.0", "2.0"),  # much slower, but no tolerance names a timing column
           prow("kmeans", "", "", status="oom", note="out of memory at batch 1; not measured")]
    found = compare_profiles(BASE, cur, parse_tolerances(["peak_rss_mb=100%"]))
    assert [(f.column, f.regression, f.problem) for f in found] == [
        ("peak_rss_mb", False, ""),
        ("status", True, "did not run: out of memory at batch 1; not measured"),
        ("status", True, "configuration not profiled"),
    ]
    halved = compare_profiles(BASE[2:], [prow("kmeans", "180.0", "5.5", batch="4", ran="2",
                                              note="out of memory at batch 4; ran at 2")], {})
    assert [(f.column, f.baseline, f.current, f.regression) for f in halved] == [("batch_size", "4", "2", True)]
    leak = compare_profiles(BASE[:1], [prow("otsu", "10.0", "100.0", rss="250.0")], parse_tolerances(["peak_rss_mb=100%"]))
    assert leak[0].regression and leak[0].ratio == pytest.approx(2.5)


def test_unusable_profile_baselines_and_tolerances_are_refused() -> None:
    with pytest.raises(ValueError, match="p.csv has no rows"):
        check_profile_baseline([], "p.csv")
    with pytest.raises(ValueError, match="lacks the column.*requested_batch_size"):
        check_profile_baseline([{"method": "x", "status": "ok"}], "p.csv")
    with pytest.raises(ValueError, match="no configuration with status ok"):
        check_profile_baseline([prow("otsu", "", "", status="error")], "p.csv")
    assert check_profile_baseline(BASE, "p.csv") == 3
    with pytest.raises(ValueError, match="dice: not a timing or memory column of the baseline profile p.csv"):
        check_profile_tolerances(parse_tolerances(["dice=10%"]), BASE, "p.csv")
    with pytest.raises(ValueError, match="relative tolerance"):
        check_profile_tolerances(parse_tolerances(["peak_rss_mb=5"]), BASE, "p.csv")
    check_profile_tolerances(parse_tolerances(["latency_p50_ms=25%", "gpu_allocated_mb=10%"]), BASE, "p.csv")


def write(folder: Path, rows: list[dict[str, str]], settings: dict[str, object] | None = None) -> Path:
    folder.mkdir(parents=True)
    with open(folder / "profile.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=HEADER)
        writer.writeheader()
        writer.writerows(rows)
    if settings is not None:
        (folder / "provenance.json").write_text(json.dumps({"settings": settings, "environment": {"threads": 1}}))
    return folder / "profile.csv"


def test_cli_prints_ratios_and_exits_1_on_regression(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base = write(tmp_path / "profiles" / "box" / "v1", BASE, {"repeats": 5})
    slow = write(tmp_path / "new" / "v1", [prow("otsu", "120.0", "8.0"), *BASE[1:]], {"repeats": 3})
    args = ("check", "--profile-baseline", str(base), "--tolerance", "latency_p50_ms=300%")
    bad = invoke(*args, "--current", str(slow))
    assert bad.exit_code == 1, bad.output
    assert "12.00" in bad.output and "1 profile regression(s)" in bad.output  # 120 / 10
    assert "settings differ from the baseline (repeats: baseline 5, current 3)" in bad.output
    # without --current: the newest version beside the baseline, once there is one
    lonely = invoke(*args)
    assert lonely.exit_code == 2 and "no profile newer than" in lonely.output
    write(tmp_path / "profiles" / "box" / "v2", [prow("otsu", "30.0", "33.0"), *BASE[1:]])
    ok = invoke(*args, "--json")
    assert ok.exit_code == 0, ok.output
    summary = json.loads(ok.output)
    assert summary["verdict"] == "pass" and summary["current"].endswith("v2/profile.csv")
    assert [round(c["ratio"], 3) for c in summary["comparisons"]] == [3.0, 1.0, 1.0]
    both = invoke("check", "--profile-baseline", str(base), "--baseline", str(base))
    assert both.exit_code == 2 and "one of them" in both.output
    typo = invoke("check", "--profile-baseline", str(base), "--tolerance", "latency_p05_ms=300%")
    assert typo.exit_code == 2 and "latency_p05_ms: not a timing or memory column" in typo.output


def test_the_ci_gate_baseline_is_committed_and_its_tolerances_apply() -> None:
    makefile = (REPO / "Makefile").read_text()
    path = re.search(r"^PROFILE_BASELINE\s*:=\s*(\S+)", makefile, re.M)
    tols = re.search(r"^PROFILE_TOLERANCES\s*:=\s*(.+)$", makefile, re.M)
    assert path and tols, "the Makefile names the profile baseline and tolerances of 'make check'"
    with open(REPO / path.group(1)) as fh:
        rows = list(csv.DictReader(fh))
    assert check_profile_baseline(rows, path.group(1)) == len(rows)
    assert {r["method"] for r in rows} == {"otsu", "kmeans"} and {r["input"] for r in rows} == {"dsb2018-sample"}
    parsed = parse_tolerances(re.findall(r"--tolerance\s+(\S+)", tols.group(1)))
    check_profile_tolerances(parsed, rows, path.group(1))
    # wide enough for a slower shared machine, tight enough to catch a tenfold slowdown
    latency = parsed["latency_image_p50_ms"]
    assert 2.0 <= 1 + latency.amount < 10.0
    tenfold = [{**r, "latency_image_p50_ms": str(float(r["latency_image_p50_ms"]) * 10)} for r in rows]
    assert all(f.regression for f in compare_profiles(rows, tenfold, parsed) if f.column == "latency_image_p50_ms")
