"""Run cells one after another in this process.

Each cell may use every CPU the process may run on (``threads`` in its record), or
``OMP_NUM_THREADS`` when the user set it; the limits are set when the cell starts and the
process's previous ones restored when it ends."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from harness.executors.base import Executor, cell_threads, error_record, limit_threads, with_threads, with_timing
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
            # one cell at a time: it may use every CPU (or the user's OMP_NUM_THREADS)
            cell = with_threads(with_timing(self._pending.pop(0), 1), cell_threads(1))
            restore: list[Callable[[], None]] = []

            def on_start(threads: int = cell.provenance["threads"], undo: list[Callable[[], None]] = restore) -> None:
                undo.append(limit_threads(threads))

            record: Mapping[str, Any]
            try:
                with time_limit(self.cell_timeout):
                    record = execute_cell(cell, self.store_root, self.registry, self.on_image, on_start)
            except CellTimeout as exc:  # the limit struck outside the cell's own handler (its write)
                record = error_record(cell, f"timeout: {exc}", self.store_root)
            finally:
                for undo in restore:  # this process's pools as they were before the cell
                    undo()
            yield cell, record
