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
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import numpy as np
import psutil


def latency_summary(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/mean latency in milliseconds and images per second over per-image timings."""
    if not seconds:
        return {"latency_p50_ms": None, "latency_p95_ms": None, "latency_mean_ms": None,
                "images_per_s": None, "predict_s": 0.0, "n_images": 0}
    arr = np.asarray(seconds, dtype=float)
    total = float(arr.sum())
    return {
        "latency_p50_ms": float(np.percentile(arr, 50) * 1e3),
        "latency_p95_ms": float(np.percentile(arr, 95) * 1e3),
        "latency_mean_ms": float(arr.mean() * 1e3),
        "images_per_s": float(len(arr) / total) if total > 0 else None,
        "predict_s": total,
        "n_images": len(arr),
    }


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
