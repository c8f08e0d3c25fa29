"""The per-cell peak-memory sampler: children counted, brief peaks caught, no /proc-wide scan.

Nothing here depends on how fast the machine is: a test that needs the sampler thread to have
looked while memory was held waits until its reading counter has moved, then lets go."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import psutil
import pytest

from harness import profiler
from harness.profiler import PeakMemory

MIB = 2**20
#: What the tests allocate: far above the noise of an interpreter's own RSS.
ALLOC_MB = 160

_CHILD = (
    "import sys\n"
    f"block = b'\\x01' * ({ALLOC_MB} * 2**20)  # written, so resident\n"
    "{spawn}"
    "print('ready', flush=True)\n"
    "sys.stdin.read()\n"
)
_GRANDCHILD = (
    "import subprocess, sys\n"
    "kid = subprocess.Popen([sys.executable, '-c', 'import sys; sys.stdin.read()'], stdin=subprocess.PIPE)\n"
)


@contextmanager
def child_holding_memory(*, grandchild: bool = False) -> Iterator[subprocess.Popen[str]]:
    """A Python child that holds ``ALLOC_MB`` written MiB (and optionally a child of its own)
    until its stdin closes."""
    code = _CHILD.format(spawn=_GRANDCHILD if grandchild else "")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=60)


def wait_for_readings(memory: PeakMemory, n: int, timeout_s: float = 120.0) -> None:
    """Block until the sampler has taken ``n`` more readings (generous deadline: a stuck
    sampler is a failure, a slow machine is not)."""
    target = memory.samples + n
    deadline = time.monotonic() + timeout_s
    while memory.samples < target:
        assert time.monotonic() < deadline, "the sampler thread took no readings"
        time.sleep(0.001)


def _needs_kernel_mark() -> None:
    if not profiler._reset_kernel_peak():
        pytest.skip("this system has no resettable peak-RSS mark (/proc/self/clear_refs)")


def test_a_brief_peak_is_caught_by_the_kernel_mark_without_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    _needs_kernel_mark()
    # children make the sampler poll; in a full test session the process may hold some (the
    # multiprocessing resource tracker, pools of earlier tests): this test is about no children
    monkeypatch.setattr(profiler, "_children_from_proc", lambda pid: [])
    with PeakMemory(children_interval_s=3600.0) as memory:  # the thread never wakes
        assert not memory.polled
        block = np.ones(ALLOC_MB * MIB // 8)  # written, so resident
        held_rss = psutil.Process().memory_info().rss / MIB
        del block  # at once: no thread had any chance to look
    assert memory.samples == 2  # entry and exit only: nothing was polled
    assert memory.peak_rss_mb >= held_rss - 5.0
    assert memory.as_dict()["rss_increase_mb"] >= ALLOC_MB * 0.9


def test_the_kernel_mark_is_reset_per_body() -> None:
    """A second body does not inherit the first one's peak (unlike ru_maxrss)."""
    _needs_kernel_mark()
    with PeakMemory() as first:
        block = np.ones(ALLOC_MB * MIB // 8)
        del block
    with PeakMemory() as second:
        pass
    assert first.peak_rss_mb - first.baseline_rss_mb >= ALLOC_MB * 0.9
    assert second.peak_rss_mb - second.baseline_rss_mb < ALLOC_MB * 0.5


def test_a_body_opened_inside_another_polls_and_leaves_the_outer_peak_alone() -> None:
    _needs_kernel_mark()
    with PeakMemory() as outer:
        block = np.ones(ALLOC_MB * MIB // 8)
        del block
        with PeakMemory() as inner:
            assert inner.polled  # a reset here would lower the outer body's peak
    assert outer.peak_rss_mb - outer.baseline_rss_mb >= ALLOC_MB * 0.9
    assert inner.peak_rss_mb - inner.baseline_rss_mb < ALLOC_MB * 0.5


def test_a_brief_peak_is_caught_by_the_polling_thread() -> None:
    with PeakMemory(kernel_peak=False) as memory:
        assert memory.polled
        block = np.ones(ALLOC_MB * MIB // 8)  # written, so resident
        held_rss = psutil.Process().memory_info().rss / MIB
        wait_for_readings(memory, 2)  # at least one reading began after the allocation
        del block
    after = psutil.Process().memory_info().rss / MIB
    # numpy frees a block this large back to the system: the exit reading alone would not see it
    assert after < held_rss - ALLOC_MB * 0.8
    assert memory.peak_rss_mb >= held_rss - 5.0
    assert memory.as_dict()["rss_increase_mb"] >= ALLOC_MB * 0.9


def test_a_child_process_memory_is_counted() -> None:
    with PeakMemory() as memory, child_holding_memory() as child:
        child_rss = psutil.Process(child.pid).memory_info().rss / MIB
        own_rss = psutil.Process().memory_info().rss / MIB
        # once listed (every children_interval_s), the child is read at every tick
        deadline = time.monotonic() + 120
        while memory.peak_rss_mb < own_rss + child_rss * 0.9:
            assert time.monotonic() < deadline, "the child's memory was never counted"
            time.sleep(0.01)
    assert child_rss >= ALLOC_MB
    assert memory.peak_rss_mb - memory.baseline_rss_mb >= ALLOC_MB * 0.9


def test_a_child_alive_at_the_end_is_counted_by_the_final_reading() -> None:
    """No waiting at all: the reading on leaving the body lists children afresh."""
    with child_holding_memory() as child:
        with PeakMemory(children_interval_s=3600.0) as memory:
            pass
        child_rss = psutil.Process(child.pid).memory_info().rss / MIB
    assert memory.peak_rss_mb >= memory.baseline_rss_mb  # the child was there on entry too
    assert memory.baseline_rss_mb >= psutil.Process().memory_info().rss / MIB + child_rss * 0.9


def test_children_listing_from_proc_matches_psutil() -> None:
    if profiler._children_from_proc(os.getpid()) is None:
        pytest.skip("no /proc/<pid>/task/<tid>/children on this system")
    with child_holding_memory(grandchild=True) as child:
        expected = {c.pid for c in psutil.Process().children(recursive=True)}
        listed = profiler._children_from_proc(os.getpid())
        ours = {child.pid, *(c.pid for c in psutil.Process(child.pid).children())}
    assert listed is not None and len(listed) == len(set(listed))
    # the session may hold other children (earlier tests' helpers): ours are the child and its child
    assert set(listed) == expected and len(ours) == 2 and ours <= expected


def test_without_proc_children_files_psutil_finds_the_children(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profiler, "_children_from_proc", lambda pid: None)
    with child_holding_memory(), PeakMemory(children_interval_s=3600.0) as memory:
        pass
    assert memory.baseline_rss_mb >= ALLOC_MB


def test_the_sampler_does_not_scan_every_process_each_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Children are listed every ``children_interval_s``, not at every 5 ms reading."""
    listings = []
    real = profiler._children_from_proc
    monkeypatch.setattr(profiler, "_children_from_proc", lambda pid: listings.append(pid) or real(pid))
    with PeakMemory(interval_s=0.001, children_interval_s=3600.0, kernel_peak=False) as memory:
        wait_for_readings(memory, 20)
    assert len(listings) == 2  # on entry and on leaving, none in between
    assert memory.samples >= 22


def test_an_interrupted_exit_still_closes_the_body(monkeypatch: pytest.MonkeyPatch) -> None:
    """A time limit firing while the body closes must not leave it counted as open (every
    later body would then poll instead of using the kernel's mark)."""
    _needs_kernel_mark()
    memory = PeakMemory()
    memory.__enter__()
    monkeypatch.setattr(memory, "_find_children", lambda: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        memory.__exit__(None, None, None)
    monkeypatch.undo()
    with PeakMemory() as later:
        assert not later.polled
