"""The run store: every result is a record on disk, written atomically.

Layout under the store root (``./runs`` by default, ``$BENCH_RUNS`` or ``--store``)::

    cells/<key>/cell.json      one per finished cell: status, timings, memory, split values
    cells/<key>/images.jsonl   one row per evaluated image: metric values and statistics
    predictions/<pkey>/stage.json        the predict stage of a cell: fit and predict timings,
                               the index of saved images, checksums of the files beside it
    predictions/<pkey>/predictions.npz   every evaluated image's prediction (lossless, compressed)
    predictions/<pkey>/model.safetensors the fitted state of a method that learns
    work/<key>/                scratch space of a cell while it runs (checkpoints)
    cells/.tmp-*               cells being written, named with the writer's pid (ignored;
                               removed once the writer is dead or after TEMP_MAX_AGE_S)
    cells/.locks/<key>.lock    per-cell lock files (``flock``) serialising writers of one cell
                               (``predictions/.tmp-*`` and ``predictions/.locks`` likewise)
    <run_id>/run.json          what a ``bench run`` asked for, its provenance and cell keys
    LATEST                     the id of the most recent run
    cache/file-hashes.json     content hashes of dataset files, by (path, size, mtime_ns)

A cell directory is assembled under a temporary name and renamed into place in one step, so a
cell is either completely present or absent: a run killed at any moment (even SIGKILL) leaves no
partial cell that looks finished, and re-running recomputes exactly the missing cells.  Cells are
content-addressed by their key, so runs that share cells (on one machine or copied from several)
share records: merging stores is copying ``cells/`` and ``predictions/`` directories.

A cell has two stages.  The *predict* stage (fit, then predict every evaluation image) is keyed
without the metrics and keeps the predictions; the *score* stage (``cells/<key>``) is keyed by
the predict stage plus the metric set.  A new or upgraded metric therefore rescores saved
predictions and never refits or re-predicts.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.records import SCHEMA_VERSION, CellRecord, ImageResult, RecordError

FINISHED = ("done", "skipped")  # Status.finished
TEMP_MAX_AGE_S = 3600.0  # a temporary cell folder older than this is a leftover, whoever wrote it
_TEMP_NAME = re.compile(r"^\.tmp-(?:old-)?.+-(\d+)-[0-9a-f]{8}$")
_REPORTED: set[str] = set()  # damage already warned about (once per file and problem)


class DamagedCellWarning(UserWarning):
    """A stored cell failed its integrity check; it is treated as absent and recomputed."""


def _report(path: Path, problem: str, kind: str = "cell record") -> None:
    what = "cell" if kind == "cell record" else kind
    message = f"damaged {kind} {path}: {problem}; treating the {what} as absent (it will be recomputed)"
    if message not in _REPORTED:
        _REPORTED.add(message)
        warnings.warn(message, DamagedCellWarning, stacklevel=4)


def default_root() -> Path:
    return Path(os.environ.get("BENCH_RUNS", "runs"))


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:  # name the file meant, not the temporary one
        raise type(exc)(exc.errno, exc.strerror, str(path)) from exc
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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:  # hashlib.file_digest is 3.11+; the project supports 3.10
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class FileHashCache:
    """Content hashes of files, reused while a file's (absolute path, size, mtime_ns) is
    unchanged; kept as one small JSON file.  A damaged cache is ignored (rebuilt)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries: dict[str, list[Any]] = {}
        self._dirty = False
        if path is not None and path.is_file():
            try:
                data = json.loads(path.read_text())
                if isinstance(data, dict):
                    self._entries = {k: v for k, v in data.items()
                                     if isinstance(v, list) and len(v) == 3}
            except (OSError, ValueError):
                self._entries = {}

    def sha256(self, path: Path) -> str:
        path = Path(path).absolute()
        st = path.stat()
        name = str(path)
        entry = self._entries.get(name)
        if entry is not None and entry[0] == st.st_size and entry[1] == st.st_mtime_ns:
            return str(entry[2])
        digest = sha256_file(path)
        self._entries[name] = [st.st_size, st.st_mtime_ns, digest]
        self._dirty = True
        return digest

    def save(self) -> None:
        if self.path is not None and self._dirty:
            write_text_atomic(self.path, json.dumps(self._entries, sort_keys=True))
            self._dirty = False


def _alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except (OverflowError, ValueError):
        return False
    return True


def _check_rows(record: Mapping[str, Any], raw: bytes) -> str:
    """What is wrong with a cell's ``images.jsonl`` bytes given its record ('' when intact).

    Records since schema 2 carry the row count and sha256; older ones get the structural
    checks only (valid JSON objects, no (split, sample id) twice)."""
    integrity = record.get("images")
    if record.get("schema", 1) >= 2:
        if not isinstance(integrity, dict) or not isinstance(integrity.get("rows"), int):
            return "the record lacks the row count and checksum of images.jsonl"
        n_rows = raw.count(b"\n")
        if n_rows != integrity["rows"] or (raw and not raw.endswith(b"\n")):
            return f"{n_rows} rows where the record says {integrity['rows']} (truncated or edited)"
        if hashlib.sha256(raw).hexdigest() != integrity.get("sha256"):
            return "contents differ from the checksum in cell.json (edited, duplicated or dropped rows)"
    seen: set[tuple[Any, Any]] = set()
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            return f"line {number} is not valid JSON"
        if not isinstance(row, dict) or not isinstance(row.get("sample_id"), str):
            return f"line {number} is not an image row (an object with a 'sample_id')"
        ident = (row.get("split"), row["sample_id"])
        if ident in seen:
            return f"line {number} repeats image {ident[1]!r} of split {ident[0]!r}"
        seen.add(ident)
    return ""


def _swap_in(tmp: Path, final: Path) -> Path:
    """Rename an assembled folder into place; an existing one is first renamed aside (to a
    ``.tmp-old-*`` name the cleaner recognises) and removed.  Call under the key's lock."""
    if final.exists():
        trash = final.parent / f".tmp-old-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(final, trash)
        shutil.rmtree(trash, ignore_errors=True)
    os.rename(tmp, final)
    return final


class Store:
    """Reads and writes cell records and run manifests under one root directory."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    @property
    def cells_dir(self) -> Path:
        return self.root / "cells"

    def file_hashes(self) -> FileHashCache:
        return FileHashCache(self.root / "cache" / "file-hashes.json")

    # ---- cells ------------------------------------------------------------------------

    def cell_dir(self, key: str) -> Path:
        return self.cells_dir / key

    def cell(self, key: str) -> CellRecord | None:
        """The cell's typed record, or ``None`` when it is absent or fails its integrity check
        (reported once as a :class:`DamagedCellWarning` naming the file)."""
        loaded = self._load(key)
        return None if loaded is None else loaded[0]

    def is_finished(self, key: str) -> bool:
        record = self.cell(key)
        return record is not None and record.get("status") in FINISHED

    def images(self, key: str) -> list[dict[str, Any]]:
        """The cell's per-image rows as stored (JSON objects, each checked as an
        :class:`ImageResult`); empty when the cell is absent or damaged."""
        loaded = self._load(key)
        return [] if loaded is None else loaded[1]

    def image_results(self, key: str) -> list[ImageResult]:
        """The cell's per-image rows, typed."""
        return [ImageResult.from_json(row) for row in self.images(key)]

    def _load(self, key: str) -> tuple[CellRecord, list[dict[str, Any]]] | None:
        """Read and check a cell.  A cell that looks absent or damaged while a writer may be
        replacing it is read again once that writer is done (a shared lock on the cell's lock
        file), so a replace is never seen as a missing or damaged cell."""
        loaded, problem = self._read(key)
        if loaded is None:
            lock = self.cells_dir / ".locks" / f"{key}.lock"
            try:
                with open(lock) as fh:  # no lock file: nobody ever wrote this cell here
                    fcntl.flock(fh.fileno(), fcntl.LOCK_SH)
                    try:
                        loaded, problem = self._read(key)
                    finally:
                        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            except OSError:
                pass
        if problem is not None:
            _report(*problem)
        return loaded

    def _read(
        self, key: str
    ) -> tuple[tuple[CellRecord, list[dict[str, Any]]] | None, tuple[Path, str] | None]:
        """The cell's (record, rows), or ``None`` and what is wrong (``None``: absent)."""
        folder = self.cell_dir(key)
        path = folder / "cell.json"
        if not path.is_file():
            return None, None
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            return None, None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            return None, (path, f"unreadable JSON ({exc})")
        try:
            typed = CellRecord.from_json(record)
        except RecordError as exc:
            return None, (path, f"not a valid cell record ({exc})")
        rows_path = folder / "images.jsonl"
        try:
            raw = rows_path.read_bytes() if rows_path.is_file() else b""
        except OSError as exc:
            return None, (rows_path, f"unreadable ({exc})")
        problem = _check_rows(record, raw)
        if problem:
            return None, (rows_path, problem)
        rows = [json.loads(line) for line in raw.splitlines() if line.strip()]
        for number, row in enumerate(rows, 1):
            try:
                ImageResult.from_json(row)
            except RecordError as exc:
                return None, (rows_path, f"line {number}: {exc}")
        return (typed, rows), None

    def write_cell(
        self,
        key: str,
        record: CellRecord | Mapping[str, Any],
        images: Iterable[ImageResult | Mapping[str, Any]],
        files: Mapping[str, bytes] | None = None,
        *,
        replace_finished: bool = True,
    ) -> Path:
        """Atomically store one cell (record, image rows, extra files such as the fitted
        model): assemble in a temporary directory, then rename, holding the cell's lock so
        concurrent writers of one key take turns.  With ``replace_finished=False`` a cell that
        another writer finished meanwhile is kept (and counts as success).  Records and rows
        are checked as :class:`CellRecord` / :class:`ImageResult` first: a writer never stores
        what a reader would call damaged."""
        data = record.to_json() if isinstance(record, CellRecord) else dict(record)
        rows = [row.to_json() if isinstance(row, ImageResult) else dict(row) for row in images]
        CellRecord.from_json({"schema": SCHEMA_VERSION, **data, "key": key})
        for row in rows:
            ImageResult.from_json(row)
        record, images = data, rows
        self.cells_dir.mkdir(parents=True, exist_ok=True)
        with self.lock(key):
            # read without the shared lock: this process holds the exclusive one (flock locks of
            # two descriptors of one file conflict even within a process)
            if not replace_finished:
                loaded, _ = self._read(key)
                if loaded is not None and loaded[0].finished:
                    return self.cell_dir(key)
            return self._write_cell_locked(key, record, images, files)

    def lock(self, key: str) -> contextlib.AbstractContextManager[None]:
        """An exclusive advisory lock (``fcntl.flock``) on one cell key, across processes."""
        return self._lock(self.cells_dir, key)

    @staticmethod
    @contextlib.contextmanager
    def _lock(pool: Path, key: str) -> Iterator[None]:
        locks = pool / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / f"{key}.lock", "a") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _write_cell_locked(
        self,
        key: str,
        record: Mapping[str, Any],
        images: Iterable[Mapping[str, Any]],
        files: Mapping[str, bytes] | None,
    ) -> Path:
        tmp = self.cells_dir / f".tmp-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            raw = b"".join(
                json.dumps(row, sort_keys=True, default=_json_default).encode() + b"\n" for row in images
            )
            with open(tmp / "images.jsonl", "wb") as fh:
                fh.write(raw)
                fh.flush()
                os.fsync(fh.fileno())
            for name, data in (files or {}).items():
                (tmp / name).write_bytes(data)
            integrity = {"rows": raw.count(b"\n"), "sha256": hashlib.sha256(raw).hexdigest()}
            write_json_atomic(tmp / "cell.json", {"schema": SCHEMA_VERSION, **record, "key": key,
                                                  "images": integrity})
            return _swap_in(tmp, self.cell_dir(key))  # replacing: --force or a retried error
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    # ---- predict stages ---------------------------------------------------------------

    @property
    def predictions_dir(self) -> Path:
        return self.root / "predictions"

    def stage_dir(self, pkey: str) -> Path:
        return self.predictions_dir / pkey

    def new_stage(self, pkey: str) -> Path:
        """A private temporary folder in which a predict stage is assembled (streamed into);
        :meth:`commit_stage` renames it into place, :func:`shutil.rmtree` discards it."""
        self.predictions_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.predictions_dir / f".tmp-{pkey}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        return tmp

    def commit_stage(self, pkey: str, tmp: Path, record: Mapping[str, Any], *, replace: bool = False) -> Path:
        """Store an assembled predict stage: checksums of every file in ``tmp`` go into its
        ``stage.json``, then one rename under the stage's lock.  An intact stage another
        writer committed meanwhile is kept (the same key holds the same predictions) unless
        ``replace`` (a forced re-run)."""
        try:
            files = {p.name: {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
                     for p in sorted(tmp.iterdir()) if p.is_file() and p.name != "stage.json"}
            write_json_atomic(tmp / "stage.json", {"schema": SCHEMA_VERSION, **record, "key": pkey, "files": files})
            with self._lock(self.predictions_dir, pkey):
                final = self.stage_dir(pkey)
                if not replace and self.stage(pkey) is not None:
                    shutil.rmtree(tmp, ignore_errors=True)
                    return final
                return _swap_in(tmp, final)  # replacing: a damaged stage or --force
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def stage(self, pkey: str) -> dict[str, Any] | None:
        """A predict stage's record when it is present and intact (every file it lists has its
        size and sha256), else ``None``; damage is reported once, naming the file."""
        folder = self.stage_dir(pkey)
        path = folder / "stage.json"
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            _report(path, f"unreadable JSON ({exc})", kind="predict stage")
            return None
        if (not isinstance(record, dict) or not isinstance(record.get("files"), dict)
                or not isinstance(record.get("images"), list)):
            _report(path, "not a predict-stage record (an object with 'files' and 'images')", kind="predict stage")
            return None
        for name, want in record["files"].items():
            file = folder / name
            try:
                size = file.stat().st_size
            except OSError:
                _report(file, "missing", kind="predict stage")
                return None
            if not isinstance(want, dict) or size != want.get("bytes") or sha256_file(file) != want.get("sha256"):
                _report(file, "size or checksum differs from stage.json (truncated or edited)", kind="predict stage")
                return None
        return record

    def cell_file(self, key: str, name: str) -> Path | None:
        """A file of a cell's results (``model.safetensors``, ``predictions.npz``): in the cell
        folder, else in its intact predict stage; ``None`` when neither has it."""
        own = self.cell_dir(key) / name
        if own.is_file():
            return own
        record = self.cell(key)
        pkey = record.predict_key if record is not None else ""
        if pkey and self.stage(pkey) is not None and (self.stage_dir(pkey) / name).is_file():
            return self.stage_dir(pkey) / name
        return None

    # ---- temporary folders --------------------------------------------------------------

    def clean_partial(self, max_age_s: float = TEMP_MAX_AGE_S) -> int:
        """Remove leftovers of cells and predict stages whose writing was interrupted:
        temporary folders whose writer process is dead, or older than ``max_age_s``; a live
        writer's folder is left alone.  Returns how many were removed."""
        now = time.time()
        removed = 0
        temps = [p for d in (self.cells_dir, self.predictions_dir) if d.is_dir() for p in d.iterdir()]
        for path in temps:
            if not path.name.startswith(".tmp-"):
                continue
            match = _TEMP_NAME.match(path.name)
            try:
                age = now - path.stat().st_mtime
            except OSError:
                continue  # renamed into place or removed meanwhile
            if match and _alive(int(match.group(1))) and age < max_age_s:
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
        return removed

    def all_cell_keys(self) -> Iterator[str]:
        if self.cells_dir.is_dir():
            for path in sorted(self.cells_dir.iterdir()):
                if not path.name.startswith(".") and self.cell(path.name) is not None:
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
        try:
            manifest = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise FileNotFoundError(f"run manifest {path} is unreadable ({exc}); re-run it with "
                                    f"'bench run --run-id {run_id}'") from None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("cells"), list):
            raise FileNotFoundError(f"run manifest {path} is not a run record (no 'cells' list)")
        return recognise_aborted(manifest)


def recognise_aborted(manifest: dict[str, Any]) -> dict[str, Any]:
    """A manifest still ``running`` whose process on this machine is gone is ``aborted`` (a
    killed run writes nothing on its way out)."""
    if manifest.get("status") != "running":
        return manifest
    pid, host = manifest.get("pid"), manifest.get("host")
    if isinstance(pid, int) and host == socket.gethostname() and not _alive(pid):
        return {**manifest, "status": "aborted",
                "aborted": f"its process (pid {pid}) ended without finishing it (killed?)"}
    return manifest
