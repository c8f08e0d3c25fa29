"""How true the per-image latency ``bench run`` records is (run with ``--benchmark-enable``).

Each round runs, one after the other, a bare loop that times the same prediction calls with ``time.perf_counter`` and ``bench run`` itself (``run_benchmark``
into a fresh store), and divides the latency the harness recorded by the bare loop's:

* otsu, on the embedded DSB2018 sample: the bare loop calls ``predict`` on each image;
* unet (untrained, seeded, no test-time augmentation), on 36 synthetic 256² images (the sample's
  10 images less a warm-up batch of 4 leave too few for a 2% comparison): the bare loop calls ``predict_batch``
  under ``torch.inference_mode`` on the same model, in the same batches the runner forms (the
  method's ``predict_batch_size`` consecutive images of one size), synchronising CUDA when used.

Both sides leave their first call (one image, or one batch) out as the warm-up.  The median
ratios over the rounds (mean and p50 latency) are printed and kept in the benchmark's
``extra_info``; the benchmark's own time is that of a whole round.  A ratio within 0.98-1.02
means the harness adds no measurable cost to, and removes none from, what it times.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness import hookimpl
from harness.bench import run_benchmark
from harness.plugins import Registry, Source, build_registry
from harness.runner import batch_size
from harness.store import Store

DATASET: tuple[str, dict[str, Any]] = ("dsb2018-sample", {})
UNET_DATASET: tuple[str, dict[str, Any]] = (
    "synthetic", {"n_train": 1, "n_validation": 0, "n_test": 36, "height": 256, "width": 256})
ROUNDS = 7
SOURCE = Source(entry_point="tests.latency", distribution="tests", version="0")


def _summary(per_image: Sequence[float], first_call: int) -> tuple[float, float]:
    timed = list(per_image[first_call:]) if len(per_image) > first_call else list(per_image)
    return statistics.mean(timed) * 1e3, statistics.median(timed) * 1e3


def _batches(images: Sequence[np.ndarray], size: int) -> list[list[np.ndarray]]:
    """The runner's batches: ``size`` consecutive images, split by image shape."""
    out = []
    for start in range(0, len(images), size):
        chunk: dict[tuple[int, ...], list[np.ndarray]] = {}
        for image in images[start:start + size]:
            chunk.setdefault(image.shape, []).append(image)
        out.extend(chunk.values())
    return out


def _bare_loop(method: Any, images: Sequence[np.ndarray], sync: Callable[[], None]) -> tuple[float, float]:
    per_image: list[float] = []
    batches = _batches(images, batch_size(method))
    for batch in batches:
        sync()
        start = time.perf_counter()
        if len(batch) > 1:
            method.predict_batch(batch)
        else:
            method.predict(batch[0])
        sync()
        per_image += [(time.perf_counter() - start) / len(batch)] * len(batch)
    return _summary(per_image, len(batches[0]))


def _harness(registry: Registry, method: str, params: dict[str, Any], root: Path,
             dataset: tuple[str, dict[str, Any]] = DATASET) -> tuple[float, float]:
    result = run_benchmark(registry, [dataset], [(method, params)], [0], store=Store(root), device="cpu")
    (record,) = result.records.values()
    assert record["status"] == "done", record.get("error")
    return record["latency_mean_ms"], record["latency_p50_ms"]


def _compare(benchmark: Any, capsys: Any, name: str, bare: Callable[[], tuple[float, float]],
             harness: Callable[[Path], tuple[float, float]], tmp_path: Path) -> None:
    ratios: list[tuple[float, float]] = []
    counter = itertools.count()

    def one_round() -> None:
        b_mean, b_p50 = bare()
        h_mean, h_p50 = harness(tmp_path / f"r{next(counter)}")
        ratios.append((h_mean / b_mean, h_p50 / b_p50))

    harness(tmp_path / "warm")  # imports, caches and the planner's file hashes, outside the rounds
    benchmark.pedantic(one_round, rounds=ROUNDS, warmup_rounds=1)
    # the warm-up round left out; with benchmarks disabled (the test suite) there is one round
    kept = ratios[1:] or ratios
    mean_ratio = statistics.median(r[0] for r in kept)
    p50_ratio = statistics.median(r[1] for r in kept)
    benchmark.extra_info.update(latency_mean_ratio=round(mean_ratio, 4), latency_p50_ratio=round(p50_ratio, 4))
    with capsys.disabled():
        print(f"\n{name}: harness / bare latency, median over {len(kept)} rounds: "
              f"mean {mean_ratio:.3f}, p50 {p50_ratio:.3f}")


def _images(name: str, params: dict[str, Any]) -> list[np.ndarray]:
    dataset = build_registry(warn=False).dataset(name, **params)
    return [dataset.load(split, sid).image for split in dataset.eval_splits for sid in dataset.sample_ids(split)]


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    return _images(*DATASET)


def test_latency_accuracy_otsu(benchmark: Any, capsys: Any, images: list[np.ndarray], tmp_path: Path) -> None:
    benchmark.group = "latency accuracy: harness vs bare loop"
    registry = build_registry(warn=False)
    method = registry.method("otsu")
    _compare(benchmark, capsys, "otsu", lambda: _bare_loop(method, images, lambda: None),
             lambda root: _harness(registry, "otsu", {}, root), tmp_path)


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


def test_latency_accuracy_unet(benchmark: Any, capsys: Any, tmp_path: Path) -> None:
    if benchmark.disabled:  # minutes of CPU on 2 cores: a measurement, not a check of the suite
        pytest.skip("run with --benchmark-enable")
    torch = pytest.importorskip("torch")
    from harness import RunContext

    benchmark.group = "latency accuracy: harness vs bare loop"
    cls, plugin = _untrained_unet()
    registry = build_registry(extra_plugins=[(plugin, SOURCE)], warn=False)
    params = {"tta": "none"}
    method = cls(**params)
    method.setup(RunContext(seed=0, device="cpu"))
    cuda = method._device().type == "cuda"
    images = _images(*UNET_DATASET)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def bare() -> tuple[float, float]:
        with torch.inference_mode():
            return _bare_loop(method, images, sync)

    _compare(benchmark, capsys, "unet (untrained, tta=none)", bare,
             lambda root: _harness(registry, "unet-untrained", params, root, UNET_DATASET), tmp_path)
