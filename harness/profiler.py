"""Timing and memory measurement for cells: latency percentiles, throughput, peak memory.

Peak process memory is sampled by a background thread (resident set size of this process and
its children), so it is a per-cell peak even when several cells run in one process, unlike
``ru_maxrss`` which only grows.  Peak CUDA memory comes from torch's allocator statistics, reset
at the start of each cell, and is only read when torch is already imported and a GPU is in use.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import numpy as np
import psutil


def latency_summary(seconds: Sequence[float], warmup: int = 1) -> dict[str, float | None]:
    """p50/p95/mean latency in milliseconds and images per second over per-image timings.

    The first ``warmup`` timings (lazy imports, allocator and cache warm-up) are left out of
    the statistics whenever more than that many images were timed; ``n_timed`` says how many
    were counted, ``n_images`` and ``predict_s`` still cover every image.
    """
    if not seconds:
        return {"latency_p50_ms": None, "latency_p95_ms": None, "latency_mean_ms": None,
                "images_per_s": None, "predict_s": 0.0, "n_images": 0, "n_timed": 0}
    everything = np.asarray(seconds, dtype=float)
    arr = everything[warmup:] if len(everything) > warmup else everything
    total = float(arr.sum())
    return {
        "latency_p50_ms": float(np.percentile(arr, 50) * 1e3),
        "latency_p95_ms": float(np.percentile(arr, 95) * 1e3),
        "latency_mean_ms": float(arr.mean() * 1e3),
        "images_per_s": float(len(arr) / total) if total > 0 else None,
        "predict_s": float(everything.sum()),
        "n_images": len(everything),
        "n_timed": len(arr),
    }


#: The percentiles ``bench profile`` reports, as column suffixes.
PERCENTILES = (50, 95, 99)


def percentiles_ms(seconds: Sequence[float], prefix: str) -> dict[str, float | None]:
    """``{prefix}_p50_ms`` … ``{prefix}_p99_ms`` and ``{prefix}_mean_ms`` of timings in seconds
    (numpy's default linear interpolation between order statistics)."""
    if not len(seconds):
        return {**{f"{prefix}_p{q}_ms": None for q in PERCENTILES}, f"{prefix}_mean_ms": None}
    ms = np.asarray(seconds, dtype=float) * 1e3
    values = np.percentile(ms, PERCENTILES)
    out: dict[str, float | None] = {f"{prefix}_p{q}_ms": float(v) for q, v in zip(PERCENTILES, values)}
    out[f"{prefix}_mean_ms"] = float(ms.mean())
    return out


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` means the host or the GPU ran out of memory (never imports torch)."""
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")
    oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None) if torch is not None else None
    if oom is not None and isinstance(exc, oom):
        return True
    # older torch and some backends raise a plain RuntimeError with this text
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def release_memory() -> None:
    """Give cached GPU blocks back after an out-of-memory failure, so the retry starts clean."""
    import gc

    gc.collect()
    torch = _torch_cuda()
    if torch is not None:
        torch.cuda.empty_cache()


@dataclass
class GpuPeaks:
    """Peak allocated and reserved CUDA memory (MiB) over a ``with`` body; all None without
    a GPU in use.  The allocator's peaks are reset on entry, so each body is measured alone."""

    enabled: bool = True
    allocated_mb: float | None = None
    reserved_mb: float | None = None

    def __enter__(self) -> GpuPeaks:
        torch = _torch_cuda() if self.enabled else None
        if torch is not None:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        return self

    def __exit__(self, *exc: object) -> None:
        torch = _torch_cuda() if self.enabled else None
        if torch is not None:
            torch.cuda.synchronize()
            self.allocated_mb = torch.cuda.max_memory_allocated() / 2**20
            self.reserved_mb = torch.cuda.max_memory_reserved() / 2**20


def timed_repeats(call: Callable[[], object], *, warmup: int, repeats: int,
                  cuda_sync: bool = False) -> list[float]:
    """Run ``call`` ``warmup`` times untimed, then ``repeats`` times, each timed alone between
    device synchronisations; the seconds of each timed call."""
    for _ in range(warmup):
        call()
    out = []
    for _ in range(repeats):
        with Stopwatch(cuda_sync=cuda_sync) as clock:
            call()
        out.append(clock.seconds)
    return out


def halving(batch_size: int) -> list[int]:
    """The batch sizes tried after out-of-memory failures: ``batch_size``, its half, … down to 1."""
    sizes = [batch_size]
    while sizes[-1] > 1:
        sizes.append(sizes[-1] // 2)
    return sizes


def torch_modules(obj: object) -> list[Any]:
    """The ``torch.nn.Module`` attributes of a method (its network), without importing torch."""
    torch = sys.modules.get("torch")
    if torch is None:
        return []
    return [v for v in getattr(obj, "__dict__", {}).values() if isinstance(v, torch.nn.Module)]


def parameter_count(obj: object) -> int | None:
    """Parameters of the networks a method holds, counted once each; None when it holds none."""
    modules = torch_modules(obj)
    if not modules:
        return None
    seen: dict[int, int] = {}
    for module in modules:
        for p in module.parameters():
            seen[id(p)] = p.numel()
    return sum(seen.values())


def count_flops(call: Callable[[], object]) -> int:
    """Floating-point operations torch performs during ``call`` (a multiply-add counts two),
    from ``torch.utils.flop_counter.FlopCounterMode``."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        call()
    return int(counter.get_total_flops())


def _torch_cuda() -> Any | None:
    """torch when it is already imported and CUDA is available, else None (never imports)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        return torch if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001 - a broken CUDA setup means no GPU numbers, not a crash
        return None


@dataclass
class PeakMemory:
    """Context manager recording peak RSS (MiB) and peak CUDA allocation (MiB) in its body."""

    interval_s: float = 0.005
    peak_rss_mb: float = 0.0
    baseline_rss_mb: float = 0.0
    peak_gpu_mb: float | None = None
    gpu_name: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _proc: psutil.Process = field(default_factory=psutil.Process, repr=False)

    def _rss(self) -> float:
        proc = self._proc
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return total / 2**20

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_rss_mb = max(self.peak_rss_mb, self._rss())

    def __enter__(self) -> PeakMemory:
        self._proc = psutil.Process()
        self.baseline_rss_mb = self.peak_rss_mb = self._rss()
        torch = _torch_cuda()
        if torch is not None:
            torch.cuda.reset_peak_memory_stats()
        self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_rss_mb = max(self.peak_rss_mb, self._rss())
        torch = _torch_cuda()
        if torch is not None:
            self.peak_gpu_mb = torch.cuda.max_memory_allocated() / 2**20
            self.gpu_name = torch.cuda.get_device_name()

    def as_dict(self) -> dict[str, float | str | None]:
        return {
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "rss_increase_mb": round(self.peak_rss_mb - self.baseline_rss_mb, 1),
            "peak_gpu_mb": None if self.peak_gpu_mb is None else round(self.peak_gpu_mb, 1),
            "gpu": self.gpu_name,
        }


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds``; synchronises CUDA when in use."""

    def __init__(self, cuda_sync: bool = False) -> None:
        self.cuda_sync = cuda_sync
        self.seconds = 0.0

    def _sync(self) -> None:
        if self.cuda_sync:
            torch = _torch_cuda()
            if torch is not None:
                torch.cuda.synchronize()

    def __enter__(self) -> Stopwatch:
        self._sync()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sync()
        self.seconds = time.perf_counter() - self._start
