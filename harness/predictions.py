"""Saved predictions: a method's outputs for every evaluated image, lossless and compressed.

The predict stage of a cell writes one ``predictions.npz`` (a zip of ``.npy`` members,
deflate-compressed, read back with ``allow_pickle=False``) plus an index in its record:

* member names are ``<n>.<field>`` where ``n`` numbers the image in the index and ``field`` is
  ``foreground``, ``instances``, ``classes``, ``clusters``, ``probabilities`` or
  ``detections.<name>``;
* a foreground equal to ``instances > 0`` is not stored twice (an empty marker member says
  to rebuild it);
* label maps are stored in the smallest unsigned type that holds their largest value (uint8,
  uint16 or uint32) and given back as int32, so a 256×256 DSB2018 instance map costs a few KiB;
* probabilities are kept only on request (they are large and no metric of the catalogue needs
  them); they stay float32.

Members are streamed into the zip one image at a time, so saving costs no memory beyond the
image being written.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from harness.types import Prediction

LABEL_FIELDS = ("instances", "classes", "clusters")
FILE_NAME = "predictions.npz"
#: Stored instead of a foreground that equals ``instances > 0`` (it is rebuilt on reading).
DERIVED_FOREGROUND = "foreground_from_instances"


def _label_dtype(array: np.ndarray) -> np.dtype:
    top = int(array.max()) if array.size else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def encode(pred: Prediction, *, probabilities: bool = False) -> dict[str, np.ndarray]:
    """The arrays to save for one prediction (field name → array), losslessly narrowed."""
    out: dict[str, np.ndarray] = {}
    if pred.foreground is not None:
        fg = np.asarray(pred.foreground, dtype=bool)
        if pred.instances is not None and np.array_equal(fg, np.asarray(pred.instances) > 0):
            out[DERIVED_FOREGROUND] = np.zeros(0, dtype=np.uint8)  # marker: foreground = instances > 0
        else:
            out["foreground"] = fg
    for name in LABEL_FIELDS:
        arr = getattr(pred, name)
        if arr is None:
            continue
        arr = np.asarray(arr)
        if arr.size and int(arr.min()) < 0:
            raise ValueError(f"prediction {name} has negative labels; cannot save it")
        out[name] = arr.astype(_label_dtype(arr), copy=False)
    if probabilities and pred.probabilities is not None:
        out["probabilities"] = np.asarray(pred.probabilities, dtype=np.float32)
    for key, arr in (pred.detections or {}).items():
        out[f"detections.{key}"] = np.asarray(arr)
    return out


def decode(arrays: Mapping[str, np.ndarray]) -> Prediction:
    """A :class:`Prediction` from saved arrays (label maps back as int32)."""
    kwargs: dict[str, Any] = {}
    detections: dict[str, np.ndarray] = {}
    for name, arr in arrays.items():
        if name.startswith("detections."):
            detections[name.split(".", 1)[1]] = arr
        elif name in LABEL_FIELDS:
            kwargs[name] = arr.astype(np.int32)
        elif name == "foreground":
            kwargs[name] = arr.astype(bool, copy=False)
        elif name == "probabilities":
            kwargs[name] = arr
    if DERIVED_FOREGROUND in arrays and "instances" in kwargs:
        kwargs["foreground"] = kwargs["instances"] > 0
    if detections:
        kwargs["detections"] = detections
    return Prediction(**kwargs)


class PredictionWriter:
    """Streams predictions into one npz file; :meth:`close` returns its size and sha256."""

    def __init__(self, path: Path, *, probabilities: bool = False) -> None:
        self.path = Path(path)
        self.probabilities = probabilities
        self._zip = zipfile.ZipFile(self.path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6)
        self.count = 0

    def add(self, pred: Prediction) -> tuple[int, list[str]]:
        """Save one image's prediction; returns its number and the fields saved."""
        number = self.count
        arrays = encode(pred, probabilities=self.probabilities)
        for field, arr in arrays.items():
            # a fixed timestamp: the same predictions give the same bytes (and sha256) on any run
            info = zipfile.ZipInfo(f"{number}.{field}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with self._zip.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.ascontiguousarray(arr), allow_pickle=False)
        self.count += 1
        return number, sorted(arrays)

    def close(self) -> dict[str, Any]:
        self._zip.close()
        return {"file": self.path.name, "bytes": self.path.stat().st_size, "sha256": file_sha256(self.path),
                "images": self.count}

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._zip.fp is not None:
            self._zip.close()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class PredictionReader:
    """Reads saved predictions by image number (never unpickles)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._zip = zipfile.ZipFile(self.path)
        self._fields: dict[int, list[str]] = {}
        for name in self._zip.namelist():
            number, _, rest = name.partition(".")
            if rest.endswith(".npy") and number.isdigit():
                self._fields.setdefault(int(number), []).append(rest[:-4])

    def __len__(self) -> int:
        return len(self._fields)

    def arrays(self, number: int) -> dict[str, np.ndarray]:
        out = {}
        for field in sorted(self._fields.get(number, [])):
            with self._zip.open(f"{number}.{field}.npy") as fh:
                out[field] = _read_array(fh)
        return out

    def get(self, number: int) -> Prediction:
        if number not in self._fields:
            raise KeyError(f"{self.path}: no saved prediction number {number}")
        return decode(self.arrays(number))

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._fields))

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> PredictionReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_array(fh: IO[bytes]) -> np.ndarray:
    return np.lib.format.read_array(fh, allow_pickle=False)  # type: ignore[no-any-return]
