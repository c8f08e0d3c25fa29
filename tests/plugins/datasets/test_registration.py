from __future__ import annotations

import inspect

import pytest

from harness.data import FileDataset
from harness.plugins import build_registry

NAMES = ("glas", "dsb2018", "monuseg", "pannuke", "segpc2021", "nucls", "consep")


@pytest.fixture(scope="module")
def registry():  # type: ignore[no-untyped-def]
    return build_registry(warn=False)


@pytest.mark.parametrize("name", NAMES)
def test_registered_with_complete_metadata(registry, name: str) -> None:  # type: ignore[no-untyped-def]
    assert not registry.failures, registry.failures
    entry = registry.get("dataset", name)
    cls = entry.obj
    assert entry.source.entry_point == f"datasets.{name}"
    assert issubclass(cls, FileDataset)
    assert inspect.signature(cls.__init__).parameters["root"].default is None
    assert cls.license and cls.citation and cls.download_help and cls.homepage
    assert cls.train_split in cls.splits and set(cls.eval_splits) <= set(cls.splits)
    assert cls.train_split not in cls.eval_splits
    assert cls.class_names[0] == "background" and cls.primary_metrics
    assert "root" not in cls().get_params_for_key()  # the location is not content
