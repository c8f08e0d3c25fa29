"""Timing and memory measurement for cells: latency percentiles, throughput, peak memory.

Peak process memory (:class:`PeakMemory`) is the largest resident set size of this process plus
its child processes between entering and leaving a ``with`` body, so it is a per-cell peak even
when several cells run in one process one after another (unlike ``ru_maxrss``, which only
grows).  How it is taken, cheapest first:

- This process's own peak comes from the kernel: on entry its high-water mark (``VmHWM``) is
  reset to the current RSS (``/proc/self/clear_refs``, Linux 4.0+), on exit it is read, so a
  peak however brief is caught and nothing is polled.  Side effect: ``ru_maxrss`` of this
  process counts from that reset too.  Where that is impossible (another system, a refused
  write, or another ``PeakMemory`` already open in this process, whose peak a reset would
  lower), a background thread reads the RSS every ``interval_s`` (5 ms; one ``pread`` of
  ``/proc/self/statm``, psutil elsewhere).
- Child processes (recursively) are looked for every ``children_interval_s`` (0.1 s) by the
  background thread, through ``/proc/<pid>/task/<tid>/children`` where Linux offers it (psutil's
  scan of every process in ``/proc`` elsewhere); while some exist, the sum of this process's
  RSS and theirs is read every ``interval_s``.  A child that lives less than
  ``children_interval_s`` may be missed.
- Both ends of the body are read too (children listed afresh).

The peak is the largest of these readings and of the kernel's high-water mark.  Peak CUDA
memory comes from torch's allocator statistics, reset at the start of each cell, and is only
read when torch is already imported and a GPU is in use.
"""

from __future__ import annotations

import contextlib
import os
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


def _children_from_proc(pid: int) -> list[int] | None:
    """Descendants of ``pid`` from ``/proc/<pid>/task/<tid>/children`` (Linux 3.5+), one read
    per thread of each process instead of a scan of every process; None where the files do not
    exist (another system, or a kernel without them)."""
    if not os.path.exists(f"/proc/{pid}/task/{pid}/children"):
        return None
    found: list[int] = []
    stack = [pid]
    while stack:
        parent = stack.pop()
        try:
            tids = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue  # a descendant that just exited
        for tid in tids:
            try:
                with open(f"/proc/{parent}/task/{tid}/children", "rb") as fh:
                    kids = [int(k) for k in fh.read().split()]
            except OSError:
                continue  # a thread or process that just exited
            found.extend(kids)
            stack.extend(kids)
    return found


class _OwnRss:
    """This process's resident set size in bytes: ``pread`` of ``/proc/self/statm`` (a few
    microseconds), or psutil where that file does not exist."""

    def __init__(self) -> None:
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        try:
            self._fd: int | None = os.open("/proc/self/statm", os.O_RDONLY)
        except OSError:
            self._fd = None
        self._proc = psutil.Process()

    def __call__(self) -> int:
        if self._fd is not None:
            return int(os.pread(self._fd, 256, 0).split()[1]) * self._page
        return int(self._proc.memory_info().rss)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _reset_kernel_peak() -> bool:
    """Reset this process's high-water RSS mark to its current RSS; False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # 5: reset the peak RSS only (proc(5))
    except OSError:
        return False
    return _kernel_peak() is not None


def _kernel_peak() -> int | None:
    """This process's high-water RSS mark (``VmHWM``) in bytes, None where unavailable."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


#: Open :class:`PeakMemory` bodies in this process (a reset of the kernel's mark would lower
#: the peak of the others, so only the first one open resets it).
_open_lock = threading.Lock()
_open_count = 0


@dataclass
class PeakMemory:
    """Context manager recording peak RSS (MiB) and peak CUDA allocation (MiB) in its body.

    ``interval_s``: how often the RSS is read when it is polled; ``children_interval_s``: how
    often child processes are looked for; ``kernel_peak``: use the kernel's high-water mark for
    this process's own peak where possible (see the module's notes).  ``samples`` counts the
    RSS readings taken, ``polled`` says whether this process's RSS had to be polled."""

    interval_s: float = 0.005
    children_interval_s: float = 0.1
    kernel_peak: bool = True
    peak_rss_mb: float = 0.0
    baseline_rss_mb: float = 0.0
    peak_gpu_mb: float | None = None
    gpu_name: str | None = None
    samples: int = 0
    polled: bool = True
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _own: _OwnRss | None = field(default=None, repr=False)
    _children: dict[int, psutil.Process] = field(default_factory=dict, repr=False)
    _proc_children: bool = field(default=True, repr=False)

    def _find_children(self) -> None:
        pids = _children_from_proc(os.getpid()) if self._proc_children else None
        if pids is None:
            self._proc_children = False
            with contextlib.suppress(psutil.Error):
                pids = [c.pid for c in psutil.Process().children(recursive=True)]
        known = self._children
        current = set(pids or ())
        for pid in list(known):
            if pid not in current:
                del known[pid]
        for pid in current - known.keys():
            with contextlib.suppress(psutil.Error):
                known[pid] = psutil.Process(pid)

    def _rss(self) -> float:
        assert self._own is not None
        total = self._own()
        for pid, child in list(self._children.items()):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                self._children.pop(pid, None)  # exited: looked for again at the next listing
        self.samples += 1
        return total / 2**20

    def _sample(self) -> None:
        next_listing = time.monotonic() + self.children_interval_s
        while True:
            reading = self.polled or bool(self._children)
            if self._stop.wait(self.interval_s if reading else self.children_interval_s):
                return
            if time.monotonic() >= next_listing:
                self._find_children()
                next_listing = time.monotonic() + self.children_interval_s
            if self.polled or self._children:
                self.peak_rss_mb = max(self.peak_rss_mb, self._rss())

    def __enter__(self) -> PeakMemory:
        global _open_count
        self._stop.clear()
        self._own = _OwnRss()
        self._children = {}
        self.samples = 0
        with _open_lock:
            first = _open_count == 0
            _open_count += 1
            self.polled = not (self.kernel_peak and first and _reset_kernel_peak())
        try:
            self._find_children()
            self.baseline_rss_mb = self.peak_rss_mb = self._rss()
        except BaseException:
            with _open_lock:
                _open_count -= 1
            raise
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
        global _open_count
        self._stop.set()
        try:
            if self._thread is not None:
                self._thread.join()
            self._find_children()
            self.peak_rss_mb = max(self.peak_rss_mb, self._rss())
            if not self.polled:
                own_peak = _kernel_peak()
                if own_peak is not None:
                    self.peak_rss_mb = max(self.peak_rss_mb, own_peak / 2**20)
        finally:  # even when a cell's time limit interrupts this: later bodies may reset the mark
            with _open_lock:
                _open_count -= 1
            if self._own is not None:
                self._own.close()
            self._children = {}
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
