"""Run cells one after another in this process."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from harness.executors.base import Executor, error_record, with_timing
from harness.runner import CellSpec, CellTimeout, execute_cell


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise CellTimeout in the body after ``seconds`` (main thread on POSIX; else no limit).

    The limit is a ``SIGALRM`` timer, so it fires wherever the cell is: fitting, predicting,
    loading an image or computing a metric (``CellTimeout`` is a ``BaseException``, so the
    per-image handlers do not swallow it).  Python code and sleeps are interrupted promptly; a
    long call into native code is interrupted when it returns.  Use the ``process`` executor
    for a hard limit.
    """
    usable = seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise CellTimeout(f"cell exceeded {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))  # type: ignore[arg-type]
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class LocalExecutor(Executor):
    name = "local"
    description = "one cell after another in this process (time limit: a signal, soft)"
    on_image: Callable[[str, str], None] | None = None

    def as_completed(self) -> Iterator[tuple[CellSpec, Mapping[str, Any]]]:
        while self._pending and not self._cancelled:
            cell = with_timing(self._pending.pop(0), 1)
            record: Mapping[str, Any]
            try:
                with time_limit(self.cell_timeout):
                    record = execute_cell(cell, self.store_root, self.registry, self.on_image)
            except CellTimeout as exc:  # the limit struck outside the cell's own handler (its write)
                record = error_record(cell, f"timeout: {exc}", self.store_root)
            yield cell, record
