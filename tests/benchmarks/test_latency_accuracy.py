"""How true the per-image latency ``bench run`` records is (run with ``--benchmark-enable``).

Each round runs, one after the other, a bare loop that times the same prediction calls with
``time.perf_counter`` and ``bench run`` itself (``run_benchmark`` into a fresh store), and
divides the latency the harness recorded by the bare loop's:

* otsu, on the embedded DSB2018 sample: the bare loop calls ``predict`` on each image;
* unet (untrained, seeded, no test-time augmentation), on 36 synthetic 256² images (the sample's
  10 images less a warm-up batch of 4 leave too few for a 2% comparison): the bare loop calls
  ``predict_batch`` under ``torch.inference_mode`` on the same model, in the same batches the
  runner forms (the method's ``predict_batch_size`` consecutive images of one size),
  synchronising CUDA when used.

Like the runner, the bare loop loads a batch's images just before predicting them (untimed).

Both sides leave their first call (one image, or one batch) out as the warm-up.  The median
ratios over the rounds (mean and p50 latency), with a 95% bootstrap interval of each median over
the rounds, are printed and kept in the benchmark's ``extra_info``; the benchmark's own time is
that of a whole round.  A ratio within 0.98-1.02 means the harness adds no measurable cost to,
and removes none from, what it times; an interval wider than that says the machine was too noisy
to tell.

Both sides run with the same number of threads, ``BENCH_LATENCY_THREADS`` (default 1): the
harness through ``OMP_NUM_THREADS``, which the local executor honours, the bare loop through
the executors' ``limit_threads`` (threadpoolctl and ``torch.set_num_threads``).  With as many threads as the 2-core machine has
cores, any other process stalls one of them at the operator's barrier, and a round's mean moved
by 5-10% from one round to the next; with one thread, 2-4%.
"""

from __future__ import annotations

import itertools
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness import hookimpl
from harness.bench import run_benchmark
from harness.executors.base import limit_threads
from harness.plugins import Registry, Source, build_registry
from harness.runner import batch_size
from harness.store import Store
from harness.uncertainty import percentile_interval

DATASET: tuple[str, dict[str, Any]] = ("dsb2018-sample", {})
UNET_DATASET: tuple[str, dict[str, Any]] = (
    "synthetic", {"n_train": 1, "n_validation": 0, "n_test": 36, "height": 256, "width": 256})
ROUNDS = 11  # unet: about 25 s a round
OTSU_ROUNDS = 31  # otsu: about half a second a round
THREADS = int(os.environ.get("BENCH_LATENCY_THREADS", "1"))
SOURCE = Source(entry_point="tests.latency", distribution="tests", version="0")


def _summary(per_image: Sequence[float], first_call: int) -> tuple[float, float]:
    timed = list(per_image[first_call:]) if len(per_image) > first_call else list(per_image)
    return statistics.mean(timed) * 1e3, statistics.median(timed) * 1e3


def _shape_groups(images: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
    """The runner's calls for one batch: its images split by shape."""
    groups: dict[tuple[int, ...], list[np.ndarray]] = {}
    for image in images:
        groups.setdefault(image.shape, []).append(image)
    return list(groups.values())


def _bare_loop(method: Any, splits: Sequence[Sequence[Callable[[], np.ndarray]]],
               sync: Callable[[], None]) -> tuple[float, float]:
    """Per evaluation split, load a batch (``predict_batch_size`` consecutive images), then
    time one call per image shape in it: the runner's order.  Loading right before predicting
    matters: a freshly decoded image is in the CPU's caches, and otsu's ~13 ms per image moved
    by 6-7% between a loop over images loaded in advance and one over freshly copied images."""
    per_image: list[float] = []
    calls: list[int] = []
    size = batch_size(method)
    for loaders in splits:
        for first in range(0, len(loaders), size):
            for group in _shape_groups([load() for load in loaders[first:first + size]]):
                sync()
                start = time.perf_counter()
                if len(group) > 1:
                    method.predict_batch(group)
                else:
                    method.predict(group[0])
                sync()
                per_image += [(time.perf_counter() - start) / len(group)] * len(group)
                calls.append(len(group))
    return _summary(per_image, calls[0])


def _harness(registry: Registry, method: str, params: dict[str, Any], root: Path,
             dataset: tuple[str, dict[str, Any]] = DATASET) -> tuple[float, float]:
    result = run_benchmark(registry, [dataset], [(method, params)], [0], store=Store(root), device="cpu")
    (record,) = result.records.values()
    assert record["status"] == "done", record.get("error")
    return record["latency_mean_ms"], record["latency_p50_ms"]


def _compare(benchmark: Any, capsys: Any, name: str, bare: Callable[[], tuple[float, float]],
             harness: Callable[[Path], tuple[float, float]], tmp_path: Path, rounds: int = ROUNDS) -> None:
    ratios: list[tuple[float, float]] = []
    counter = itertools.count()

    def one_round() -> None:
        b_mean, b_p50 = bare()
        h_mean, h_p50 = harness(tmp_path / f"r{next(counter)}")
        ratios.append((h_mean / b_mean, h_p50 / b_p50))

    harness(tmp_path / "warm")  # imports, caches and the planner's file hashes, outside the rounds
    benchmark.pedantic(one_round, rounds=rounds, warmup_rounds=1)
    # the warm-up round left out; with benchmarks disabled (the test suite) there is one round
    kept = ratios[1:] or ratios
    summary = {}
    for column, values in (("mean", [r[0] for r in kept]), ("p50", [r[1] for r in kept])):
        median = statistics.median(values)
        low, high = median_interval(values)
        summary[column] = (median, low, high)
        benchmark.extra_info.update({f"latency_{column}_ratio": round(median, 4),
                                     f"latency_{column}_ratio_interval": [round(low, 4), round(high, 4)]})
    benchmark.extra_info["threads"] = THREADS
    with capsys.disabled():
        print(f"\n{name}: harness / bare latency, median over {len(kept)} rounds, {THREADS} thread(s): "
              + ", ".join(f"{c} {m:.3f} [{lo:.3f}, {hi:.3f}]" for c, (m, lo, hi) in summary.items()))


def median_interval(values: Sequence[float], resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the median of ``values`` (the rounds' ratios)."""
    data = np.asarray(values, dtype=float)
    if data.size < 2:
        return float(data[0]), float(data[0])
    draws = np.random.default_rng(seed).integers(0, data.size, size=(resamples, data.size))
    return percentile_interval(np.median(data[draws], axis=1))


@pytest.fixture(autouse=True)
def same_threads(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Both sides run with ``THREADS`` threads: the harness reads ``OMP_NUM_THREADS``; the bare
    loop runs under the executors' own limits (torch's pool too once it is imported: the unet
    test limits again after importing it)."""
    monkeypatch.setenv("OMP_NUM_THREADS", str(THREADS))
    restore = limit_threads(THREADS)
    yield
    restore()


def _loaders(name: str, params: dict[str, Any]) -> list[list[Callable[[], np.ndarray]]]:
    """Per evaluation split, one function per image that loads it, in the runner's order."""
    dataset = build_registry(warn=False).dataset(name, **params)
    return [[lambda split=split, sid=sid: dataset.load(split, sid).image for sid in dataset.sample_ids(split)]
            for split in dataset.eval_splits]


def test_latency_accuracy_otsu(benchmark: Any, capsys: Any, tmp_path: Path) -> None:
    benchmark.group = "latency accuracy: harness vs bare loop"
    registry = build_registry(warn=False)
    method = registry.method("otsu")
    loaders = _loaders(*DATASET)
    _compare(benchmark, capsys, "otsu", lambda: _bare_loop(method, loaders, lambda: None),
             lambda root: _harness(registry, "otsu", {}, root), tmp_path, OTSU_ROUNDS)


def _untrained_unet() -> tuple[type, object]:
    """A UNet registered as a method that does not learn: ``setup`` builds the network freshly
    initialised from a fixed seed (speed does not depend on the weights)."""
    import torch

    from plugins.methods.deep.unet import UNet

    class UntrainedUNet(UNet):
        name = "unet-untrained"
        learns = False

        def setup(self, context: Any) -> None:
            super().setup(context)
            self._require()
            torch.manual_seed(0)
            self.num_classes_ = 1
            self.model_ = self.build(1).eval()

    class Plugin:
        @hookimpl
        def bench_register_methods(self, register):  # type: ignore[no-untyped-def]
            register(UntrainedUNet)

    return UntrainedUNet, Plugin()


def test_latency_accuracy_unet(benchmark: Any, capsys: Any, tmp_path: Path, request: Any) -> None:
    if benchmark.disabled:  # minutes of CPU on 2 cores: a measurement, not a check of the suite
        pytest.skip("run with --benchmark-enable")
    torch = pytest.importorskip("torch")
    from harness import RunContext

    request.addfinalizer(limit_threads(THREADS))  # now that torch is imported

    benchmark.group = "latency accuracy: harness vs bare loop"
    cls, plugin = _untrained_unet()
    registry = build_registry(extra_plugins=[(plugin, SOURCE)], warn=False)
    params = {"tta": "none"}
    method = cls(**params)
    method.setup(RunContext(seed=0, device="cpu"))
    cuda = method._device().type == "cuda"
    loaders = _loaders(*UNET_DATASET)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def bare() -> tuple[float, float]:
        with torch.inference_mode():
            return _bare_loop(method, loaders, sync)

    _compare(benchmark, capsys, "unet (untrained, tta=none)", bare,
             lambda root: _harness(registry, "unet-untrained", params, root, UNET_DATASET), tmp_path)
