"""``bench export`` writes saved predictions as image files; ``bench score`` scores such a folder
as an ordinary cell; exporting a method's predictions and scoring them gives its values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from harness.store import Store


def _values(store: Store, key: str) -> dict[tuple[str, str], dict[str, float]]:
    return {(r["split"], r["sample_id"]): r["values"] for r in store.images(key)}


def test_exported_predictions_score_exactly_the_methods_values(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert invoke("run", "--methods", "otsu", "--quiet").exit_code == 0
    store = Store(tmp_path / "runs")
    run = store.run()
    (otsu_key,) = run["cells"]
    result = invoke("export", "--out", "exported")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "exported" / "dsb2018-sample" / "otsu" / "seed0"
    labels = sorted((folder / "test").glob("*.png"))
    overlays = sorted((folder / "overlays" / "test").glob("*.png"))
    assert len(labels) == len(overlays) == 10
    first = np.asarray(Image.open(labels[0]))
    assert first.dtype == np.uint16 and first.max() > 0  # a 16-bit instance map
    overlay = np.asarray(Image.open(overlays[0]))
    assert overlay.shape[2] == 3 and (overlay == (230, 0, 230)).all(axis=2).any()  # predicted contours

    result = invoke("score", "--dataset", "dsb2018-sample", "--predictions", str(folder), "--name", "mine",
                    "--run", run["run_id"])
    assert result.exit_code == 0, result.output
    run = store.run(run["run_id"])
    assert len(run["cells"]) == 2
    mine = store.cell(run["cells"][1])
    assert mine is not None and mine["submitted"] is True and mine["label"] == "mine"
    assert "latency_p50_ms" not in mine  # submitted predictions are not timed
    assert _values(store, run["cells"][1]) == _values(store, otsu_key)

    # ranked beside the method, marked as submitted
    assert invoke("leaderboard", "--out", "lb", "--bootstrap", "0").exit_code == 0
    md = (tmp_path / "lb" / "dsb2018-sample" / "v1" / "leaderboard.md").read_text()
    assert "`mine §`" in md and "submitted with `bench score`" in md

    # scoring the same files again reuses the cell (keyed by content)
    again = invoke("score", "--dataset", "dsb2018-sample", "--predictions", str(folder), "--name", "mine",
                   "--run", run["run_id"])
    assert again.exit_code == 0 and len(store.run(run["run_id"])["cells"]) == 2


def _folder(invoke, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    assert invoke("run", "--methods", "otsu", "--quiet").exit_code == 0
    assert invoke("export", "--out", "exported", "--no-overlays").exit_code == 0
    return tmp_path / "exported" / "dsb2018-sample" / "otsu" / "seed0" / "test"


def test_missing_extra_and_missized_files_are_named(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = _folder(invoke, tmp_path)
    files = sorted(folder.glob("*.png"))
    gone = files[0]
    gone.unlink()
    result = invoke("score", "--dataset", "dsb2018-sample", "--predictions", str(folder.parent), "--name", "x")
    assert result.exit_code == 1
    assert f"1 of 10 test images have no file in {folder}" in result.output.replace("\n", "")
    assert gone.stem in result.output.replace("\n", "")

    np.save(gone.with_suffix(".npy"), np.zeros((3, 3), np.int32))  # back, but the wrong size
    (folder / "stray.png").write_bytes(files[1].read_bytes())
    result = invoke("score", "--dataset", "dsb2018-sample", "--predictions", str(folder.parent), "--name", "x")
    assert result.exit_code == 1 and "stray.png" in result.output and "match no evaluation image" in result.output
    (folder / "stray.png").unlink()
    result = invoke("score", "--dataset", "dsb2018-sample", "--predictions", str(folder.parent), "--name", "x")
    assert result.exit_code == 1
    flat = result.output.replace("\n", "")
    assert f"{gone.with_suffix('.npy')}: size 3×3, the image is" in flat


def test_float_maps_and_method_names_are_refused(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = _folder(invoke, tmp_path)
    victim = sorted(folder.glob("*.png"))[0]
    victim.unlink()
    np.save(victim.with_suffix(".npy"), np.full((4, 4), 0.5))
    result = invoke("score", "--dataset", "dsb2018-sample", "--predictions", str(folder.parent), "--name", "x")
    assert result.exit_code == 1 and "dtype float64; expected integer labels" in result.output
    result = invoke("score", "--dataset", "dsb2018-sample", "--predictions", str(folder.parent), "--name", "otsu")
    assert result.exit_code == 2 and "is a method's name" in result.output


def test_saved_prediction_cost_is_recorded(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert invoke("run", "--methods", "otsu", "--quiet").exit_code == 0
    store = Store(tmp_path / "runs")
    record = store.cell(store.run()["cells"][0])
    assert record is not None
    stage_dir = store.stage_dir(record["predict_key"])
    stage = json.loads((stage_dir / "stage.json").read_text())
    size = (stage_dir / "predictions.npz").stat().st_size
    assert record["predictions"]["bytes"] == size == stage["files"]["predictions.npz"]["bytes"]
    assert record["predictions"]["bytes_per_image"] == size / 10
