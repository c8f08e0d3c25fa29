"""Typed records: JSON round trip, one status vocabulary, and type errors that name the field."""

from __future__ import annotations

import json

import pytest

from harness.records import CellRecord, ImageResult, RecordError, Status
from harness.store import Store

CELL = {"key": "k", "dataset": "d", "method": "m", "label": "m(x=1)", "params": {"x": 1}, "seed": 2,
        "status": "done", "metrics": ["dice"], "eval_splits": ["test"], "predict_key": "p", "schema": 3,
        "fit_s": 1.5, "splits": {"test": {"dice": {"value": 0.5}}}}


def test_cell_record_round_trips_through_json() -> None:
    record = CellRecord.from_json(json.loads(json.dumps(CELL)))
    assert record.status is Status.DONE and record.finished and record.seed == 2
    assert record.extra == {"fit_s": 1.5, "splits": {"test": {"dice": {"value": 0.5}}}}
    assert record.splits["test"]["dice"]["value"] == 0.5
    assert record.to_json() == CELL
    assert CellRecord.from_json(record.to_json()) == record
    # read as data: the mapping view is the JSON form
    assert record["status"] == "done" and record.get("fit_s") == 1.5 and dict(record) == CELL
    assert record.replace(status=Status.ERROR, error="boom", fit_s=2.0).to_json() == {
        **CELL, "status": "error", "error": "boom", "fit_s": 2.0}


def test_image_result_round_trips_and_statuses_are_one_vocabulary() -> None:
    row = {"split": "test", "sample_id": "a", "status": "partial", "values": {"dice": 0.25},
           "stats": {"dice": {"value": 0.25}}, "metric_errors": {"aji": "ValueError: x"}, "predict_s": 0.01}
    result = ImageResult.from_json(row)
    assert result.status is Status.PARTIAL and result.to_json() == row
    error = ImageResult(split="test", sample_id="b", status=Status.ERROR, error="load: OSError")
    assert error.to_json() == {"split": "test", "sample_id": "b", "status": "error", "error": "load: OSError"}
    assert not Status.ERROR.finished and Status.SKIPPED.finished
    with pytest.raises(RecordError, match="status 'done' is not one of error, ok, partial"):
        ImageResult.from_json({**row, "status": "done"})  # a cell status on an image
    with pytest.raises(RecordError, match="status 'ok' is not one of done, error, skipped"):
        CellRecord.from_json({**CELL, "status": "ok"})


@pytest.mark.parametrize(("change", "message"), [
    ({"seed": "2"}, "'seed' is str, expected int"),
    ({"seed": True}, "'seed' is bool, expected int"),
    ({"params": []}, "'params' is list, expected an object"),
    ({"schema": 4}, "schema 4; this segbench reads schemas 1 to 3"),
])
def test_cell_record_type_errors_name_the_field(change: dict, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        CellRecord.from_json({**CELL, **change})


def test_image_value_must_be_finite() -> None:
    with pytest.raises(RecordError, match="finite numbers"):
        ImageResult.from_json({"split": "t", "sample_id": "a", "status": "ok", "values": {"dice": float("nan")}})


def test_the_store_writes_and_reads_typed_records(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store(tmp_path)
    rows = [ImageResult(split="test", sample_id="a", status=Status.OK, values={"dice": 1.0},
                        stats={"dice": {"value": 1.0}})]
    store.write_cell("k", CellRecord.from_json(CELL), rows)
    back = store.cell("k")
    assert isinstance(back, CellRecord) and back.status is Status.DONE and back["fit_s"] == 1.5
    assert store.image_results("k") == rows
    with pytest.raises(RecordError, match="no 'dataset'"):  # a writer never stores what readers reject
        store.write_cell("k2", {k: v for k, v in CELL.items() if k != "dataset"}, [])
    assert store.cell("k2") is None
