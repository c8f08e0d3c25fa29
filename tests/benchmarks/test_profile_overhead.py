"""The cost of ``bench profile``'s measurement itself (run with ``--benchmark-enable``).

Each pair times the same calls two ways: through the profiler (``measure``: memory sampler,
synchronised stopwatch per batch, out-of-memory guard) and as a bare loop calling the same
``predict_batch`` on the same images.  The ratio of the two means is the overhead of the
measurement; compare within a group (``--benchmark-group-by=group``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from harness.commands.profile import _predict_step, measure, prepare, synthetic_images
from plugins.methods.otsu import Otsu

REPEATS = 8


def _bare(method: Any, pool: list[np.ndarray], batch: int) -> Callable[[], None]:
    batches = [[pool[(j * batch + i) % len(pool)] for i in range(batch)] for j in range(len(pool))]

    def loop() -> None:
        for k in range(REPEATS):
            method.predict_batch(batches[k % len(batches)])
    return loop


def _profiled(method: Any, pool: list[np.ndarray], batch: int) -> Callable[[], None]:
    def run() -> None:
        result = measure(_predict_step(method, pool), batch, warmup=0, repeats=REPEATS, cuda=False)
        assert result["status"] == "ok"
    return run


def _methods() -> dict[str, Callable[[], Any]]:
    out: dict[str, Callable[[], Any]] = {"otsu": Otsu}
    try:
        import torch  # noqa: F401

        from plugins.methods.deep.unet import UNet
    except ImportError:
        return out
    out["unet"] = UNet
    return out


@pytest.mark.parametrize("how", ["bare", "profiled"])
@pytest.mark.parametrize("name", list(_methods()))
def test_profile_overhead_256(benchmark: Any, name: str, how: str) -> None:
    method = _methods()[name]()
    prepare(method, device="cpu")
    pool = synthetic_images(256, 4, seed=256)
    method.predict_batch(pool[:1])  # warm-up outside the timing, as measure's own warm-up does
    benchmark.group = f"profile overhead {name}"
    call = (_bare if how == "bare" else _profiled)(method, pool, 1)
    benchmark.pedantic(call, rounds=5, warmup_rounds=1)
