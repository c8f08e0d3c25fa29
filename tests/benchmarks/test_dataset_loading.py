"""Throughput of the real-data loaders: every sample of every split, decoded once per round.

Run with ``pytest tests/benchmarks/test_dataset_loading.py --benchmark-enable``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import Dataset
from plugins.datasets.dsb2018 import DSB2018
from plugins.datasets.glas import GlaS

SHARED = Path(
    os.environ.get(
        "BENCH_SHARED_DATASETS", Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
    )
)


def iterate_all(dataset: Dataset) -> int:
    pixels = 0
    for split in dataset.splits:
        for sample in dataset.samples(split):
            pixels += sample.image.shape[0] * sample.image.shape[1]
    return pixels


@pytest.mark.parametrize(
    ("name", "make", "marker"),
    [
        ("glas", lambda root: GlaS(root=root), "Grade.csv"),
        ("dsb2018", lambda root: DSB2018(root=root), "stage1_train"),
    ],
)
def test_iterate_every_sample(benchmark, name, make, marker) -> None:  # type: ignore[no-untyped-def]
    if benchmark.disabled:  # a full pass over the real data takes tens of seconds
        pytest.skip("dataset loading benchmarks run only with --benchmark-enable")
    root = SHARED / name
    if not (root / marker).exists():
        pytest.skip(f"no real {name} copy at {root}")
    n_samples = sum(len(make(root).sample_ids(s)) for s in make(root).splits)
    pixels = benchmark.pedantic(
        lambda: iterate_all(make(root)), rounds=3, iterations=1, warmup_rounds=0
    )
    benchmark.extra_info.update({"samples": n_samples, "megapixels": round(pixels / 1e6, 2)})
    assert pixels > 0
