"""The cost of ``bench run`` itself (run with ``--benchmark-enable``).

Two ways of doing the same work on the embedded DSB2018 sample with otsu: ``run_benchmark``
(planning and keys, dataset content hashes, the memory sampler, saved predictions, the
atomic, checked store) into a fresh store each round, and a bare loop that loads each image,
predicts it and computes the same metrics.  Both give identical per-image values (asserted).
Compare the two means (``--benchmark-group-by=group``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.bench import run_benchmark
from harness.plugins import build_registry
from harness.runner import applicable_metrics, score_image
from harness.store import Store
from harness.types import ImagePair

DATASET = ("dsb2018-sample", {})


@pytest.fixture(scope="module")
def registry():  # type: ignore[no-untyped-def]
    return build_registry(warn=False)


def _bare(registry: Any) -> dict[str, dict[str, float]]:
    dataset = registry.dataset(DATASET[0], **DATASET[1])
    method = registry.method("otsu")
    specs = [registry.metric(m) for m in applicable_metrics(registry, dataset.provides, method.outputs)]
    out = {}
    for split in dataset.eval_splits:
        for sid in dataset.sample_ids(split):
            sample = dataset.load(split, sid)
            values, _, _ = score_image(ImagePair(method.predict(sample.image), sample), specs)
            out[sid] = values
    return out


def _harness(registry: Any, root: Path) -> dict[str, dict[str, float]]:
    store = Store(root)
    result = run_benchmark(registry, [DATASET], [("otsu", {})], [0], store=store, device="cpu")
    (key,) = result.records
    return {r["sample_id"]: r["values"] for r in store.images(key)}


def test_bench_run_and_a_bare_loop_agree(registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert _harness(registry, tmp_path / "runs") == _bare(registry)


@pytest.mark.parametrize("how", ["bare", "bench_run"])
def test_run_overhead_sample(benchmark: Any, registry, tmp_path: Path, how: str) -> None:  # type: ignore[no-untyped-def]
    benchmark.group = "bench run overhead (dsb2018-sample, otsu)"
    rounds = iter(range(1000))
    if how == "bare":
        benchmark.pedantic(lambda: _bare(registry), rounds=5, warmup_rounds=1)
    else:
        benchmark.pedantic(lambda: _harness(registry, tmp_path / f"r{next(rounds)}"), rounds=5, warmup_rounds=1)
