"""per_image.csv beside each leaderboard version, and ``bench show --worst``."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest


def test_per_image_csv_and_worst_images(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert invoke("run", "--datasets", "squares", "--methods", "decode,decode(shift=1)", "--metrics", "dice",
                  "--quiet").exit_code == 0
    assert invoke("leaderboard", "--metrics", "dice").exit_code == 0
    path = tmp_path / "leaderboards" / "squares" / "v1" / "per_image.csv"
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["entry", "seed", "split", "sample_id", "metric", "value"]
    perfect = [r for r in rows if r["entry"] == "decode"]
    assert [(r["sample_id"], float(r["value"])) for r in perfect] == [("a", 1.0), ("b", 1.0)]
    shifted = sorted(float(r["value"]) for r in rows if r["entry"] == "decode(shift=1)")
    assert len(shifted) == 2 and sum(shifted) / 2 == pytest.approx(0.625)  # the leaderboard's split mean
    shown = invoke("show", "--worst", "1", "--metric", "dice")
    assert shown.exit_code == 0
    assert "decode(shift=1)" in shown.output and f"{shifted[0]:.4f}" in shown.output
    assert f"{shifted[1]:.4f}" not in shown.output or shifted[0] == shifted[1]
    missing = invoke("show", "--metric", "iou")
    assert missing.exit_code != 0 and "no per-image values of 'iou'" in missing.output
