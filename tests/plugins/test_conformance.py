"""The conformance kit over segbench's own plugins.

The sweep is hermetic: a third-party plugin installed on the machine cannot turn this suite
red.  ``pytest --all-plugins`` sweeps every installed plugin instead (third-party included).
"""

from __future__ import annotations

import pytest

from harness import DataError
from harness.plugins import OWN_DISTRIBUTION, Entry
from harness.testing import check_dataset, check_method, check_metric, plugin_params

KINDS = {"dataset_entry": "dataset", "method_entry": "method", "metric_entry": "metric"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for argument, kind in KINDS.items():
        if argument in metafunc.fixturenames:
            every = metafunc.config.getoption("all_plugins")
            params = plugin_params(kind, distribution=None if every else OWN_DISTRIBUTION)  # type: ignore[arg-type]
            metafunc.parametrize(argument, params)


def test_dataset_conforms(dataset_entry: Entry) -> None:
    entry = dataset_entry
    try:
        dataset = entry.obj()
        dataset.sample_ids(dataset.eval_splits[0])
    except DataError as exc:
        pytest.skip(f"data for {entry.name!r} is not on this machine: {exc}")
    check_dataset(dataset)


def test_method_conforms(method_entry: Entry) -> None:
    entry = method_entry
    if getattr(entry.obj, "uses_gpu", False):
        pytest.importorskip("torch")
    check_method(entry.obj)


def test_metric_conforms(metric_entry: Entry) -> None:
    check_metric(metric_entry.obj)


def test_a_third_party_plugin_is_swept_only_on_request() -> None:
    from harness.plugins import build_registry
    from tests.conftest import FAKE, FakePlugin

    registry = build_registry(extra_plugins=[(FakePlugin(), FAKE)], warn=False)
    own = {p.values[0].name for p in plugin_params("method", registry, OWN_DISTRIBUTION)}
    every = {p.values[0].name for p in plugin_params("method", registry)}
    assert "crash" not in own and "otsu" in own
    assert {"crash", "decode", "otsu"} <= every
