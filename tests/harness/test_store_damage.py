"""A damaged cell is reported once, naming the file, and treated as absent."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from harness.store import DamagedCellWarning, Store

ROWS = [{"split": "test", "sample_id": f"s{i}", "status": "ok", "values": {"dice": i / 10}}
        for i in range(10)]
CELL = {"status": "done", "dataset": "d", "method": "m", "label": "m", "params": {}, "seed": 0}


@pytest.fixture
def cell(tmp_path: Path) -> tuple[Store, Path]:
    store = Store(tmp_path / "runs")
    folder = store.write_cell("k1", CELL, ROWS)
    assert store.is_finished("k1") and len(store.images("k1")) == 10
    return store, folder


def _lines(folder: Path) -> list[bytes]:
    return (folder / "images.jsonl").read_bytes().splitlines(keepends=True)


def _assert_absent(store: Store, named: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert store.cell("k1") is None
        assert not store.is_finished("k1")
        assert store.images("k1") == []
        assert list(store.all_cell_keys()) == []
    damage = [w for w in caught if issubclass(w.category, DamagedCellWarning)]
    assert len(damage) == 1, [str(w.message) for w in caught]  # reported once
    assert str(named) in str(damage[0].message)


def test_record_carries_row_count_and_checksum(cell) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    store, folder = cell
    record = json.loads((folder / "cell.json").read_text())
    raw = (folder / "images.jsonl").read_bytes()
    assert record["images"] == {"rows": 10, "sha256": hashlib.sha256(raw).hexdigest()}


def test_dropped_rows(cell) -> None:  # type: ignore[no-untyped-def]
    store, folder = cell
    (folder / "images.jsonl").write_bytes(b"".join(_lines(folder)[:5]))
    _assert_absent(store, folder / "images.jsonl")


def test_duplicated_row_replacing_another(cell) -> None:  # type: ignore[no-untyped-def]
    store, folder = cell
    lines = _lines(folder)
    lines[3] = lines[2]  # same row count, one image twice
    (folder / "images.jsonl").write_bytes(b"".join(lines))
    _assert_absent(store, folder / "images.jsonl")


def test_truncated_rows(cell) -> None:  # type: ignore[no-untyped-def]
    store, folder = cell
    raw = (folder / "images.jsonl").read_bytes()
    (folder / "images.jsonl").write_bytes(raw[:-7])
    _assert_absent(store, folder / "images.jsonl")


def test_edited_value_same_length(cell) -> None:  # type: ignore[no-untyped-def]
    store, folder = cell
    raw = (folder / "images.jsonl").read_bytes()
    (folder / "images.jsonl").write_bytes(raw.replace(b'"dice": 0.3', b'"dice": 0.9', 1))
    _assert_absent(store, folder / "images.jsonl")


def test_missing_rows_file(cell) -> None:  # type: ignore[no-untyped-def]
    store, folder = cell
    (folder / "images.jsonl").unlink()
    _assert_absent(store, folder / "images.jsonl")


@pytest.mark.parametrize("text", ['{"status": "do', "", "[1, 2]", '{"status": 3}',
                                  '{"status": "done", "schema": "2"}',
                                  json.dumps({**CELL, "status": "finished"}),  # not a cell status
                                  json.dumps({**CELL, "seed": "0"}),  # wrong type
                                  json.dumps({**CELL, "schema": 99}),  # written by a newer segbench
                                  json.dumps({k: v for k, v in CELL.items() if k != "dataset"})])
def test_truncated_or_wrongly_typed_cell_json(cell, text: str) -> None:  # type: ignore[no-untyped-def]
    store, folder = cell
    (folder / "cell.json").write_text(text)
    _assert_absent(store, folder / "cell.json")


def test_old_records_get_structural_checks(tmp_path: Path) -> None:
    """Schema 1 records have no checksum: invalid JSON, wrong types and repeats still count."""
    store = Store(tmp_path / "runs")
    folder = store.cells_dir / "k1"
    folder.mkdir(parents=True)
    (folder / "cell.json").write_text(json.dumps({**CELL, "schema": 1, "key": "k1"}))
    good = [json.dumps(r) + "\n" for r in ROWS[:3]]
    (folder / "images.jsonl").write_text("".join(good))
    assert store.is_finished("k1") and len(store.images("k1")) == 3
    for bad in (good + [good[0]], good + ["{not json\n"], good + ['["a"]\n'],
                good[:2] + ['{"sample_id": 7}\n']):
        (folder / "images.jsonl").write_text("".join(bad))
        _assert_absent(store, folder / "images.jsonl")


def test_damaged_cell_is_recomputed(registry, store: Store) -> None:  # type: ignore[no-untyped-def]
    from harness.bench import run_benchmark

    first = run_benchmark(registry, [("squares", {})], [("decode", {})], [0], metrics=["dice"], store=store)
    key = first.cells[0].key if hasattr(first, "cells") else next(store.all_cell_keys())
    rows = store.cell_dir(key) / "images.jsonl"
    rows.write_bytes(rows.read_bytes().splitlines(keepends=True)[0])
    with pytest.warns(DamagedCellWarning, match="images.jsonl"):
        second = run_benchmark(registry, [("squares", {})], [("decode", {})], [0], metrics=["dice"],
                               store=store)
    assert second.reused == 0
    assert len(store.images(key)) == 2 and store.is_finished(key)
