"""The regression gate: directions, tolerances, vanished and failed entries, exit codes."""

from __future__ import annotations

import pytest

from harness.check import Tolerance, compare, parse_tolerances

HIGHER = {"dice": True, "object_hausdorff": False}


def row(entry: str, dice: str, haus: str, status: str = "ok", source: str = "measured") -> dict[str, str]:
    return {"entry": entry, "source": source, "status": status,
            "dice.test.score": dice, "object_hausdorff.test.score": haus}


BASE = [row("otsu", "0.8000", "50.0"), row("unet", "0.9000", "40.0"), row("Paper", "0.95", "30", source="published")]


def test_no_change_is_no_regression() -> None:
    assert compare(BASE, BASE, HIGHER.__getitem__) == []


def test_direction_decides_what_is_worse() -> None:
    better = [row("otsu", "0.8500", "45.0"), row("unet", "0.9000", "40.0")]
    assert compare(BASE, better, HIGHER.__getitem__) == []
    worse = [row("otsu", "0.7900", "51.0"), row("unet", "0.9000", "40.0")]
    found = compare(BASE, worse, HIGHER.__getitem__)
    assert [(f.entry, f.column) for f in found] == [("otsu", "dice.test.score"), ("otsu", "object_hausdorff.test.score")]
    assert found[0].change.startswith("-0.01")


def test_absolute_and_relative_tolerances() -> None:
    worse = [row("otsu", "0.7900", "51.0"), row("unet", "0.9000", "40.0")]
    assert compare(BASE, worse, HIGHER.__getitem__, parse_tolerances(["dice=0.01", "object_hausdorff=2%"])) == []
    found = compare(BASE, worse, HIGHER.__getitem__, parse_tolerances(["dice=0.005", "object_hausdorff=1%"]))
    assert len(found) == 2  # 0.01 > 0.005; 1.0 > 1% of 50 = 0.5


def test_vanished_and_failed_entries_regress_published_rows_do_not() -> None:
    current = [row("unet", "", "", status="error: CUDA out of memory")]
    found = compare(BASE, current, HIGHER.__getitem__)
    assert [(f.entry, f.problem) for f in found] == [("otsu", "entry disappeared"), ("unet", "entry failed")]


def test_tolerance_parsing_errors_are_clear() -> None:
    assert Tolerance.parse("5%") == Tolerance(0.05, relative=True)
    with pytest.raises(ValueError, match="METRIC=AMOUNT"):
        parse_tolerances(["dice"])
    with pytest.raises(ValueError, match="not a number or a percentage"):
        parse_tolerances(["dice=lots"])


def test_unusable_baselines_are_refused() -> None:
    from harness.check import check_baseline

    with pytest.raises(ValueError, match="b.csv has no rows"):
        check_baseline([], "b.csv")
    with pytest.raises(ValueError, match="lacks the column.*entry"):
        check_baseline([{"source": "measured", "status": "ok", "dice.test.score": "1"}], "b.csv")
    with pytest.raises(ValueError, match="no METRIC.SPLIT.score"):
        check_baseline([{"entry": "x", "source": "measured", "status": "ok"}], "b.csv")
    with pytest.raises(ValueError, match="no measured entry"):
        check_baseline([BASE[2]], "b.csv")
    assert check_baseline(BASE, "b.csv") == 2


def test_non_finite_scores_regress_and_improvements_are_listed() -> None:
    from harness.check import changes

    cur = [row("otsu", "nan", "50.0"), row("unet", "0.9500", "inf")]
    found = changes(BASE, cur, HIGHER.__getitem__)
    regressions = {(f.entry, f.column) for f in found if f.kind == "regression"}
    assert regressions == {("otsu", "dice.test.score"), ("unet", "object_hausdorff.test.score")}
    (better,) = [f for f in found if f.kind == "improvement"]
    assert (better.entry, better.column, better.change) == ("unet", "dice.test.score", "+0.05 (+5.6%)")


def test_tolerances_must_be_finite_and_name_a_metric_or_profile_column() -> None:
    from harness.check import check_tolerances

    for bad in ("nan", "inf", "-1", "nan%"):
        with pytest.raises(ValueError, match="finite amount"):
            Tolerance.parse(bad)
    with pytest.raises(ValueError, match="dicee: no such metric.*metrics: dice, object_hausdorff"):
        check_tolerances(parse_tolerances(["dicee=0.1"]), BASE)
    with pytest.raises(ValueError, match="relative tolerance"):
        check_tolerances(parse_tolerances(["latency_p50_ms=3"]), BASE)
    check_tolerances(parse_tolerances(["latency_p50_ms=25%", "dice=0.1"]), BASE)


def test_profile_columns_are_gated_only_when_asked() -> None:
    base = [{**BASE[0], "latency_p50_ms": "10.0"}]
    cur = [{**BASE[0], "latency_p50_ms": "20.0"}]
    assert compare(base, cur, HIGHER.__getitem__) == []  # off by default
    (slow,) = compare(base, cur, HIGHER.__getitem__, parse_tolerances(["latency_p50_ms=25%"]))
    assert slow.column == "latency_p50_ms" and slow.problem == "worse by more than 25%"
    ok = [{**BASE[0], "latency_p50_ms": "12.0"}]
    assert compare(base, ok, HIGHER.__getitem__, parse_tolerances(["latency_p50_ms=25%"])) == []
