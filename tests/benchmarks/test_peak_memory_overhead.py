"""The cost of the per-cell peak-memory sampler (run with ``--benchmark-enable``).

The same otsu predictions over the embedded DSB2018 sample, bare and inside ``PeakMemory``
(the kernel's peak mark, and the polling thread that systems without it use); compare the
means within the group (``--benchmark-group-by=group``).
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.plugins import build_registry
from harness.profiler import PeakMemory


@pytest.fixture(scope="module")
def work():  # type: ignore[no-untyped-def]
    registry = build_registry(warn=False)
    dataset = registry.dataset("dsb2018-sample")
    method = registry.method("otsu")
    images = [dataset.load(split, sid).image for split in dataset.eval_splits for sid in dataset.sample_ids(split)]

    def run() -> None:
        for image in images:
            method.predict(image)
    run()
    return run


@pytest.mark.parametrize("how", ["bare", "kernel_peak", "polled"])
def test_peak_memory_overhead(benchmark: Any, work, how: str) -> None:  # type: ignore[no-untyped-def]
    benchmark.group = "peak-memory sampler overhead (dsb2018-sample, otsu predict)"

    def call() -> None:
        if how == "bare":
            work()
            return
        with PeakMemory(kernel_peak=how == "kernel_peak"):
            work()
    benchmark.pedantic(call, rounds=10, warmup_rounds=1)
