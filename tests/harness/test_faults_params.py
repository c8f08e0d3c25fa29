"""Plugin parameters are read and checked against the ``__init__`` annotations when the run is
planned: a value that does not fit is one line naming the plugin, parameter, value and what is
allowed (exit 2), before any cell runs."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from harness import Method, Prediction
from harness.bench import parse_specs, run_benchmark
from harness.cli import main
from harness.plugins import Registry
from harness.store import Store
from harness.types import PluginError


class Probe(Method):
    name = "probe"
    outputs = frozenset({"foreground"})

    def __init__(
        self,
        size: int = 3,
        weight: float = 1.0,
        flag: bool = False,
        mode: Literal["fast", "exact"] = "fast",
        label: str = "none",
        cap: float | None = None,
        anything=0,  # no annotation: read as before, unchecked
    ) -> None:
        self.size, self.weight, self.flag, self.mode = size, weight, flag, mode
        self.label, self.cap, self.anything = label, cap, anything

    def predict(self, image: np.ndarray) -> Prediction:
        return Prediction(foreground=np.zeros(image.shape[:2], dtype=bool))


def parse(text: str) -> dict:  # type: ignore[type-arg]
    [(name, params)] = parse_specs(text, {"probe": Probe}, "method")
    assert name == "probe"
    return params


def test_text_is_read_as_the_annotated_type() -> None:
    got = parse("probe(size=7, weight=2, flag=TRUE, mode=exact, label=none, cap=none, anything=none)")
    assert got == {"size": 7, "weight": 2.0, "flag": True, "mode": "exact", "label": "none", "cap": None,
                   "anything": None}
    assert type(got["weight"]) is float and got["label"] == "none"  # a str parameter keeps the word
    assert parse("probe(cap=0.5, label='a b')") == {"cap": 0.5, "label": "a b"}


@pytest.mark.parametrize(("text", "message"), [
    ("probe(size=abc)", "probe: parameter size=abc: expected int (default 3)"),
    ("probe(size=2.5)", "probe: parameter size=2.5: expected int (default 3)"),
    ("probe(size=true)", "probe: parameter size=true: expected int (default 3)"),
    ("probe(weight=heavy)", "probe: parameter weight=heavy: expected float (default 1.0)"),
    ("probe(flag=yes)", "probe: parameter flag=yes: expected true or false (default False)"),
    ("probe(mode=none)", "probe: parameter mode=none: expected one of 'fast', 'exact' (default 'fast')"),
    ("probe(cap=nan)", "probe: parameter cap=nan: expected float or none (default None)"),
    ("probe(cap=lots)", "probe: parameter cap=lots: expected float or none (default None)"),
])
def test_a_value_that_does_not_fit_names_parameter_value_and_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(PluginError) as caught:
        parse(text)
    assert str(caught.value) == message


def test_typed_values_from_a_suite_or_the_api_are_checked_at_planning(registry: Registry, tmp_path: Path) -> None:
    store = Store(tmp_path / "runs")
    with pytest.raises(PluginError, match=r"^decode: parameter shift='1': expected int \(default 0\)$"):
        run_benchmark(registry, [("squares", {})], [("decode", {"shift": "1"})], [0], store=store)
    with pytest.raises(PluginError, match=r"^otsu: parameter polarity=None: expected one of 'auto', 'dark', 'bright'"):
        run_benchmark(registry, [("squares", {})], [("otsu", {"polarity": None})], [0], store=store)
    with pytest.raises(PluginError, match=r"^squares: parameter broken=3: expected text"):
        run_benchmark(registry, [("squares", {"broken": 3})], [("decode", {})], [0], store=store)
    with pytest.raises(PluginError, match=r"dataset 'squares' has no parameter colour; parameters: broken"):
        run_benchmark(registry, [("squares", {"colour": 1})], [("decode", {})], [0], store=store)
    assert not list(store.all_cell_keys())


def test_bench_run_exits_2_with_one_line_before_any_cell(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "--methods", "otsu(min_size=abc)", "--datasets", "synthetic", "--quiet",
              "--store", str(tmp_path / "runs")])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["error: otsu: parameter min_size=abc: expected int (default 10)"]
    assert not (tmp_path / "runs" / "cells").exists()
