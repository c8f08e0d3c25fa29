"""Published references (``bench leaderboard --reference``) and baselines (``bench check``)
with bad rows: a short or long row, a non-finite or out-of-range score is one line naming the
file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.bench import build_leaderboard, run_benchmark
from harness.cli import main
from harness.leaderboard import RankedMetric, read_csv, reference_rows
from harness.plugins import Registry, build_registry
from harness.store import Store

METRICS = [
    RankedMetric("object_f1", True, ("testA",)),
    RankedMetric("object_hausdorff", False, ("testA",)),
]
HEADER = "entry,split,object_f1,object_hausdorff\n"


@pytest.fixture(scope="module")
def specs() -> dict:  # type: ignore[type-arg]
    registry = build_registry(warn=False)
    return {m.name: registry.metric(m.name) for m in METRICS}


@pytest.mark.parametrize(("line", "problem"), [
    ("A,testA,0.9", "line 3: 3 field(s), the header has 4 (entry, split, object_f1, object_hausdorff)"),
    ("A,testA,0.9,40,7", "line 3: 5 field(s), the header has 4"),
    ("A,testA,nan,40", "line 3: object_f1 'nan' is not a finite number"),
    ("A,testA,0.9,inf", "line 3: object_hausdorff 'inf' is not a finite number"),
    ("A,testA,0.9,-inf", "line 3: object_hausdorff '-inf' is not a finite number"),
    ("A,testA,1.2,40", "line 3: object_f1 1.2 is outside its range [0, 1]"),
    ("A,testA,-0.1,40", "line 3: object_f1 -0.1 is outside its range [0, 1]"),
    ("A,testA,0.9,-3", "line 3: object_hausdorff -3 is outside its range at least 0"),
    ("A,testA,0.9,far", "line 3: object_hausdorff 'far' is not a number"),
])
def test_bad_reference_rows_name_file_and_line(tmp_path: Path, specs, line: str, problem: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "published.csv"
    path.write_text(HEADER + "B,testA,0.5,60\n" + line + "\n")
    with pytest.raises(ValueError) as caught:
        reference_rows(path, METRICS, specs)
    message = str(caught.value)
    assert message.startswith(f"reference file {path}, {problem}")
    assert "\n" not in message


def test_good_reference_rows_still_read(tmp_path: Path, specs) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "published.csv"
    path.write_text(HEADER + "B,testA,0.5,60\n\nA,testA,1,0\n")  # a blank line is skipped
    rows = {r.entry: r.scores for r in reference_rows(path, METRICS, specs)}
    assert rows == {"B": {"object_f1.testA": 0.5, "object_hausdorff.testA": 60.0},
                    "A": {"object_f1.testA": 1.0, "object_hausdorff.testA": 0.0}}


def test_leaderboard_checks_reference_ranges_of_its_metrics(registry: Registry, store: Store, tmp_path: Path) -> None:
    result = run_benchmark(registry, [("squares", {})], [("decode", {})], [0], metrics=["dice"], store=store)
    path = tmp_path / "ref.csv"
    path.write_text("entry,split,dice\npaper,test,97.5\n")  # a percentage where a fraction belongs
    with pytest.raises(ValueError, match=r"^reference file .*ref\.csv, line 2: dice 97\.5 is outside its range \[0, 1\]$"):
        build_leaderboard(registry, store, store.run(result.run_id), "squares", metrics=["dice"], reference=path)


def test_short_baseline_row_is_one_line_naming_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "leaderboard.csv"
    base.write_text("rank,entry,source,status,dice.test.score\n1,otsu,measured,ok,0.81\n2,kmeans,measured\n")
    with pytest.raises(ValueError, match=r"line 3: 3 field\(s\), the header has 5"):
        read_csv(base)
    with pytest.raises(SystemExit) as exited:
        main(["check", "--baseline", str(base), "--current", str(base)])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {base}, line 3: 3 field(s), the header has 5; is the file cut off or edited by hand?"]


def test_a_csv_that_is_not_utf8_names_file_and_line(tmp_path: Path, specs) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "published.csv"
    path.write_bytes(HEADER.encode() + b"B,testA,0.5,60\nR\xe9sum\xe9,testA,0.5,60\n")  # Latin-1 bytes
    with pytest.raises(ValueError, match=r"^reference file .*published\.csv, line 3: byte 0xe9 is not UTF-8 text"):
        reference_rows(path, METRICS, specs)
    with pytest.raises(ValueError, match=r"published\.csv, line 3: byte 0xe9 is not UTF-8 text; save the file as UTF-8$"):
        read_csv(path)
