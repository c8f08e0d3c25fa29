"""Timings taken beside other cells are marked in records and leaderboards; timing-only
changes make no new leaderboard version."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from harness.bench import build_leaderboard, run_benchmark
from harness.executors.base import with_timing
from harness.executors.ray import slots
from harness.leaderboard import timing_of, write_version
from harness.plugins import build_registry
from harness.report import render_markdown
from harness.runner import CellSpec
from harness.store import Store

SYNTH = ("synthetic", {"n_train": 1, "n_validation": 0, "n_test": 2, "height": 48, "width": 48})


def test_with_timing_marks_the_record_fields_and_keeps_the_rest() -> None:
    cell = CellSpec("d", {}, "m", {}, 0, "quick", "cpu", ("dice",), ("test",), key="k",
                    provenance={"method_source": {"sha256": "x"}})
    marked = with_timing(cell, 3)
    assert marked.provenance == {"method_source": {"sha256": "x"}, "timing": "concurrent", "concurrent_workers": 3}
    assert (marked.key, marked.method, cell.provenance.get("timing")) == ("k", "m", None)
    assert with_timing(cell, 1).provenance["timing"] == "isolated"


def test_ray_slots_per_cell() -> None:
    assert slots({"num_cpus": 1, "num_gpus": 0}, {"CPU": 2.0}) == 2
    assert slots({"num_cpus": 2, "num_gpus": 0}, {"CPU": 7.0}) == 3
    assert slots({"num_cpus": 1, "num_gpus": 1}, {"CPU": 16.0, "GPU": 4.0}) == 4
    assert slots({"num_cpus": 0.5, "num_gpus": 0}, {"CPU": 2.0}) == 4
    assert slots({"num_cpus": 4, "num_gpus": 0}, {"CPU": 2.0}) == 1  # never less than one


def test_entry_timing_from_its_records() -> None:
    iso, con2, con3 = ({"timing": "isolated"}, {"timing": "concurrent", "concurrent_workers": 2},
                       {"timing": "concurrent", "concurrent_workers": 3})
    assert timing_of([iso, iso]) == "isolated"
    assert timing_of([con2, con3]) == "concurrent:3"
    assert timing_of([iso, con2]) == "mixed"
    assert timing_of([{}, {}]) == ""
    assert timing_of([{}, iso]) == "mixed"


def test_records_and_leaderboards_say_how_cells_were_timed(tmp_path: Path) -> None:
    registry = build_registry(warn=False)
    store = Store(tmp_path / "runs")
    plain, bigger = ("otsu", {}), ("otsu", {"min_size": 30})
    alone = run_benchmark(registry, [SYNTH], [plain], [0], metrics=["dice"], store=store)
    (key,) = [c.key for c in alone.cells]
    assert ((store.cell(key) or {})["timing"], (store.cell(key) or {})["concurrent_workers"]) == ("isolated", 1)
    side = run_benchmark(registry, [SYNTH], [plain, bigger], [0, 1], metrics=["dice"], store=store,
                         executor="process", jobs=2)
    assert side.reused == 1
    marks = {(c.label, c.seed): ((store.cell(c.key) or {})["timing"], (store.cell(c.key) or {})["concurrent_workers"])
             for c in side.cells}
    assert marks == {("otsu", 0): ("isolated", 1), ("otsu", 1): ("concurrent", 2),
                     ("otsu(min_size=30)", 0): ("concurrent", 2), ("otsu(min_size=30)", 1): ("concurrent", 2)}
    one = run_benchmark(registry, [SYNTH], [bigger], [2], metrics=["dice"], store=store, executor="process", jobs=2)
    assert (store.cell(one.cells[0].key) or {})["timing"] == "isolated"  # one cell: nothing beside it

    text, table, prov = build_leaderboard(registry, store, store.run(side.run_id), "synthetic", metrics=["dice"])
    assert {r["entry"]: r["timing"] for r in table} == {"otsu": "mixed", "otsu(min_size=30)": "concurrent:2"}
    folder, _ = write_version(tmp_path / "lb", "synthetic", text, prov)
    md = render_markdown(folder)
    rows = [line for line in md.splitlines() if line.startswith("| ") and "`otsu" in line]
    assert rows and all(line.count("‡") >= 3 for line in rows)  # beside each timing value shown
    assert ("‡ timed while up to 2 cells ran at once (concurrent: `--jobs` above 1, Ray or SLURM); such timings are "
            "not comparable with isolated ones; `otsu`: some seeds timed alone, some concurrently.") in md

    text, table, prov = build_leaderboard(registry, store, store.run(alone.run_id), "synthetic", metrics=["dice"])
    assert table[0]["timing"] == "isolated"
    folder, _ = write_version(tmp_path / "lb", "synthetic", text, prov)
    md = render_markdown(folder)
    assert "‡" not in md and "Timings: every timed cell ran alone (isolated)." in md


def _rewrite(text: str, **changes: str) -> str:
    rows = list(csv.DictReader(io.StringIO(text)))
    header = next(csv.reader(io.StringIO(text)))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows([{**r, **changes} for r in rows])
    return buf.getvalue()


def test_timing_only_changes_make_no_new_version(tmp_path: Path, registry, store: Store) -> None:  # type: ignore[no-untyped-def]
    result = run_benchmark(registry, [("squares", {})], [("decode", {})], [0], metrics=["dice"], store=store)
    text, _, prov = build_leaderboard(registry, store, store.run(result.run_id), "squares", metrics=["dice"])
    out = tmp_path / "leaderboards"
    first, new = write_version(out, "squares", text, prov)
    assert new and first.name == "v1"
    slower = _rewrite(text, latency_p50_ms="999.0", images_per_s="0.5", peak_rss_mb="4096", timing="concurrent:8")
    assert slower != text
    later = {**prov, "date": "2030-01-01T00:00:00+00:00", "machine": {"cpu": "elsewhere"}}
    kept, new = write_version(out, "squares", slower, later)
    assert kept == first and not new and (first / "leaderboard.csv").read_text() == text
    # a table written before timings were marked (no timing column) holds the same result
    header = [c for c in next(csv.reader(io.StringIO(text))) if c != "timing"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(csv.DictReader(io.StringIO(text)))
    (first / "leaderboard.csv").write_text(buf.getvalue())
    assert write_version(out, "squares", text, prov) == (first, False)
    # scores, entries and identifying provenance do make one
    rescored, new = write_version(out, "squares", _rewrite(text, **{"dice.test.score": "0.9000"}), prov)
    assert new and rescored.name == "v2"
    reseeded, new = write_version(out, "squares", _rewrite(text, **{"dice.test.score": "0.9000"}), {**prov, "seeds": [0, 1]})
    assert new and reseeded.name == "v3"
    assert json.loads((reseeded / "run.json").read_text())["seeds"] == [0, 1]


SUITE = """seeds = [0, 1]
metrics = ["dice"]

[[datasets]]
name = "squares"

[[methods]]
name = "decode"
params = { shift = 1 }
"""


def test_leaderboard_copies_the_runs_suite_file(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "mine.toml").write_text(SUITE)
    assert invoke("run", "--config", "mine.toml", "--quiet").exit_code == 0
    result = invoke("leaderboard", "--bootstrap", "0")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "leaderboards" / "squares" / "v1"
    assert (folder / "suite.toml").read_text() == SUITE
    prov = json.loads((folder / "run.json").read_text())
    assert prov["suite"] == {"file": "mine.toml", "copy": "suite.toml"} and prov["seeds"] == [0, 1]
    assert "Reproduce with `bench run --config suite.toml`" in (folder / "leaderboard.md").read_text()
    # a run started without a suite file leaves none
    assert invoke("run", "--datasets", "squares", "--methods", "decode", "--metrics", "dice", "--quiet").exit_code == 0
    assert invoke("leaderboard", "--bootstrap", "0", "--out", "plain").exit_code == 0
    plain = tmp_path / "plain" / "squares" / "v1"
    assert (plain / "leaderboard.csv").is_file() and not (plain / "suite.toml").exists()
    assert "suite" not in json.loads((plain / "run.json").read_text())
    assert "Reproduce with" not in (plain / "leaderboard.md").read_text()


@pytest.mark.parametrize("name", ["dsb2018-sample", "glas", "dsb2018"])
def test_committed_suites_describe_their_leaderboards(name: str) -> None:
    import re

    from harness.suite import load_suite
    from tests.conftest import REPO

    registry = build_registry(warn=False)
    suite = load_suite(REPO / "suites" / f"{name}.toml", list(registry.datasets), list(registry.methods))
    board = REPO / "leaderboards" / name
    version = board / (board / "LATEST").read_text().strip()
    prov = json.loads((version / "run.json").read_text())
    with open(version / "leaderboard.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["source"] == "measured"]
    measured = {r["method"] for r in rows}
    assert [d for d, _ in suite.datasets] == [prov["dataset"]]
    assert {m for m, _ in suite.methods} == measured
    for method, params in suite.methods:  # a suite's parameters (e.g. steps) are the entry's
        (row,) = [r for r in rows if r["method"] == method]
        recorded = json.loads(row["params"]) if row["params"] else {}
        assert all(recorded.get(k) == v for k, v in params.items()), (method, params, recorded)
    assert suite.settings["seeds"] == prov["seeds"]
    assert suite.settings["budget"] == prov["budget"]["name"]
    ranked = [m["name"] for m in prov["ranking"]["metrics"]]
    assert set(ranked) <= set(suite.settings.get("metrics", ranked))
    if name == "dsb2018-sample":  # the CI gate's methods, in the Makefile's order
        gate = re.search(r"^GATE_METHODS\s*:=\s*(\S+)", (REPO / "Makefile").read_text(), re.M)
        assert gate and [m for m, _ in suite.methods] == gate.group(1).split(",")
    else:  # the file says how to reproduce its leaderboard
        comments = " ".join(line.lstrip("# ") for line in suite.text.splitlines() if line.startswith("#"))
        assert f"bench run --config suites/{name}.toml" in comments and f"bench leaderboard --dataset {name}" in comments
