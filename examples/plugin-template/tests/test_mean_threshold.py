"""The plugin's own tests: segbench's conformance kit plus one behaviour check."""

from __future__ import annotations

import numpy as np

from harness.plugins import build_registry
from harness.testing import check_method
from segbench_example.methods import MeanThreshold


def test_conforms_to_the_method_contract() -> None:
    check_method(MeanThreshold)


def test_is_discovered_through_its_entry_point() -> None:
    entry = build_registry(env={}, warn=False).get("method", "mean-threshold")
    assert entry.source.distribution == "segbench-example-plugin"
    assert not entry.source.builtin


def test_dark_square_on_bright_background() -> None:
    image = np.full((8, 8, 3), 200, dtype=np.uint8)
    image[2:5, 2:5] = 20  # mean grey = (9·20 + 55·200) / 64 ≈ 174.7
    pred = MeanThreshold().predict(image)
    assert pred.foreground.sum() == 9 and pred.instances.max() == 1
