"""The run store: every result is a record on disk, written atomically.

Layout under the store root (``./runs`` by default, ``$BENCH_RUNS`` or ``--store``)::

    cells/<key>/cell.json      one per finished cell: status, timings, memory, split values
    cells/<key>/images.jsonl   one row per evaluated image: metric values and statistics
    cells/<key>/model.safetensors   the fitted state of a method that learns
    work/<key>/                scratch space of a cell while it runs (checkpoints)
    cells/.tmp-*               cells being written (ignored; removed on the next run)
    <run_id>/run.json          what a ``bench run`` asked for, its provenance and cell keys
    LATEST                     the id of the most recent run

A cell directory is assembled under a temporary name and renamed into place in one step, so a
cell is either completely present or absent: a run killed at any moment (even SIGKILL) leaves no
partial cell that looks finished, and re-running recomputes exactly the missing cells.  Cells are
content-addressed by their key, so runs that share cells (on one machine or copied from several)
share records: merging stores is copying ``cells/`` directories.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
FINISHED = ("done", "skipped")


def default_root() -> Path:
    return Path(os.environ.get("BENCH_RUNS", "runs"))


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if isinstance(obj, (set, frozenset, tuple)):
        return sorted(obj) if isinstance(obj, (set, frozenset)) else list(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a record: {obj!r}")


class Store:
    """Reads and writes cell records and run manifests under one root directory."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    @property
    def cells_dir(self) -> Path:
        return self.root / "cells"

    # ---- cells ------------------------------------------------------------------------

    def cell_dir(self, key: str) -> Path:
        return self.cells_dir / key

    def cell(self, key: str) -> dict[str, Any] | None:
        path = self.cell_dir(key) / "cell.json"
        if not path.is_file():
            return None
        with open(path) as fh:
            return json.load(fh)  # type: ignore[no-any-return]

    def is_finished(self, key: str) -> bool:
        record = self.cell(key)
        return record is not None and record.get("status") in FINISHED

    def images(self, key: str) -> list[dict[str, Any]]:
        path = self.cell_dir(key) / "images.jsonl"
        if not path.is_file():
            return []
        with open(path) as fh:
            return [json.loads(line) for line in fh if line.strip()]

    def write_cell(
        self,
        key: str,
        record: Mapping[str, Any],
        images: Iterable[Mapping[str, Any]],
        files: Mapping[str, bytes] | None = None,
    ) -> Path:
        """Atomically store one cell (record, image rows, extra files such as the fitted
        model): assemble in a temporary directory, then rename."""
        self.cells_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.cells_dir / f".tmp-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            with open(tmp / "images.jsonl", "w") as fh:
                for row in images:
                    fh.write(json.dumps(row, sort_keys=True, default=_json_default))
                    fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            for name, data in (files or {}).items():
                (tmp / name).write_bytes(data)
            write_json_atomic(tmp / "cell.json", {"schema": SCHEMA_VERSION, **record, "key": key})
            final = self.cell_dir(key)
            if final.exists():  # replacing (--force or a retried error): move the old one aside
                trash = self.cells_dir / f".tmp-old-{key}-{uuid.uuid4().hex[:8]}"
                os.rename(final, trash)
                shutil.rmtree(trash, ignore_errors=True)
            os.rename(tmp, final)
            return final
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def clean_partial(self) -> int:
        """Remove leftovers of cells whose writing was interrupted; returns how many."""
        if not self.cells_dir.is_dir():
            return 0
        leftovers = [p for p in self.cells_dir.iterdir() if p.name.startswith(".tmp-")]
        for path in leftovers:
            shutil.rmtree(path, ignore_errors=True)
        return len(leftovers)

    def all_cell_keys(self) -> Iterator[str]:
        if self.cells_dir.is_dir():
            for path in sorted(self.cells_dir.iterdir()):
                if not path.name.startswith(".") and (path / "cell.json").is_file():
                    yield path.name

    # ---- runs -------------------------------------------------------------------------

    def run_path(self, run_id: str) -> Path:
        return self.root / run_id / "run.json"

    def write_run(self, run_id: str, manifest: Mapping[str, Any]) -> None:
        write_json_atomic(self.run_path(run_id), {"schema": SCHEMA_VERSION, **manifest, "run_id": run_id})
        write_text_atomic(self.root / "LATEST", run_id + "\n")

    def run(self, run_id: str | None = None) -> dict[str, Any]:
        """A run's manifest; ``None`` or ``"latest"`` means the most recent run."""
        if run_id in (None, "latest"):
            latest = self.root / "LATEST"
            if not latest.is_file():
                raise FileNotFoundError(
                    f"no runs in {self.root.resolve()}; start one with 'bench run' "
                    "(or point --store / $BENCH_RUNS at an existing run store)"
                )
            run_id = latest.read_text().strip()
        path = self.run_path(str(run_id))
        if not path.is_file():
            known = sorted(p.parent.name for p in self.root.glob("*/run.json"))
            raise FileNotFoundError(f"no run {run_id!r} in {self.root}; runs: {', '.join(known) or '(none)'}")
        with open(path) as fh:
            return json.load(fh)  # type: ignore[no-any-return]
