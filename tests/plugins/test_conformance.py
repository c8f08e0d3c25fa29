"""The conformance kit over every registered plugin (built-in and installed third-party)."""

from __future__ import annotations

import pytest

from harness import DataError
from harness.plugins import Entry
from harness.testing import check_dataset, check_method, check_metric, plugin_params


@pytest.mark.parametrize("entry", plugin_params("dataset"))
def test_dataset_conforms(entry: Entry) -> None:
    try:
        dataset = entry.obj()
        dataset.sample_ids(dataset.eval_splits[0])
    except DataError as exc:
        pytest.skip(f"data for {entry.name!r} is not on this machine: {exc}")
    check_dataset(dataset)


@pytest.mark.parametrize("entry", plugin_params("method"))
def test_method_conforms(entry: Entry) -> None:
    if getattr(entry.obj, "uses_gpu", False):
        pytest.importorskip("torch")
    check_method(entry.obj)


@pytest.mark.parametrize("entry", plugin_params("metric"))
def test_metric_conforms(entry: Entry) -> None:
    check_metric(entry.obj)
