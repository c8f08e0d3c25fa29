"""Kaggle Data Science Bowl 2018 run-length encoding, decoded and encoded exactly.

``EncodedPixels`` is a space-separated list of ``start length`` pairs.  Pixels are numbered from
1 top to bottom, then left to right (column-major / Fortran order): pixel 1 is (row 0, col 0),
pixel 2 is (row 1, col 0).  Pairs must be positive and sorted, and no pixel may be given twice.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import DataError


def rle_decode(encoded: str, shape: tuple[int, int]) -> np.ndarray:
    """Boolean H×W mask of ``encoded``; ValueError says what is wrong with a bad encoding."""
    height, width = shape
    tokens = encoded.split()
    if len(tokens) % 2:
        raise ValueError(f"odd number of values ({len(tokens)}); expected 'start length' pairs")
    try:
        values = np.array([int(t) for t in tokens], dtype=np.int64).reshape(-1, 2)
    except ValueError as exc:
        raise ValueError(f"non-integer value in the encoding: {exc}") from exc
    except OverflowError as exc:
        raise ValueError(f"a value is beyond any image size ({exc})") from exc
    flat = np.zeros(height * width, dtype=bool)
    if not len(values):
        return flat.reshape((height, width), order="F")
    starts, lengths = values[:, 0], values[:, 1]
    if (starts < 1).any() or (lengths < 1).any():
        raise ValueError("starts and lengths must be positive (pixels are numbered from 1)")
    ends = starts + lengths - 1
    if max(starts.max(), lengths.max()) > height * width or ends.max() > height * width:
        last = max(s + n - 1 for s, n in zip(starts.tolist(), lengths.tolist()))  # no overflow
        raise ValueError(f"a run ends at pixel {last}, beyond the {height}x{width} image")
    if (starts[1:] <= ends[:-1]).any():
        raise ValueError("runs are not sorted or overlap (a pixel would be decoded twice)")
    for start, length in zip(starts.tolist(), lengths.tolist()):
        flat[start - 1 : start - 1 + length] = True
    return flat.reshape((height, width), order="F")


def rle_encode(mask: np.ndarray) -> str:
    """Encode a boolean H×W mask (column-major, 1-based ``start length`` pairs)."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    padded = np.concatenate([[False], flat, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    starts, stops = edges[0::2], edges[1::2]
    return " ".join(f"{s + 1} {e - s}" for s, e in zip(starts.tolist(), stops.tolist()))


@dataclass(frozen=True)
class RleRow:
    image_id: str
    encoded: str
    line: int
    height: int | None = None
    width: int | None = None
    usage: str | None = None


def read_rle_csv(path: Path, dataset: str = "dsb2018") -> dict[str, list[RleRow]]:
    """Rows of a DSB RLE CSV grouped by ImageId (train labels: 2 columns; solutions: 5)."""
    if not path.is_file():
        raise DataError(f"{dataset}: missing RLE file {path}")
    with open(path, "rb") as raw:
        for line, data in enumerate(raw, start=1):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{dataset}: {path} line {line} is not UTF-8 text ({exc.reason}); "
                    "re-download the file or convert it to UTF-8"
                ) from exc
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = [f.strip() for f in reader.fieldnames or []]
        if not {"ImageId", "EncodedPixels"} <= set(fields):
            raise DataError(
                f"{dataset}: {path} has header {fields or '(none: empty file)'}; expected "
                "'ImageId,EncodedPixels' (plus 'Height,Width,Usage' in solution files)"
            )
        reader.fieldnames = fields
        rows: dict[str, list[RleRow]] = {}
        for line, row in enumerate(reader, start=2):
            try:
                height = int(row["Height"]) if row.get("Height") else None
                width = int(row["Width"]) if row.get("Width") else None
            except ValueError as exc:
                raise DataError(f"{dataset}: {path} line {line}: bad Height/Width: {exc}") from exc
            image_id = (row["ImageId"] or "").strip()
            if not image_id:
                raise DataError(f"{dataset}: {path} line {line} has no ImageId")
            rows.setdefault(image_id, []).append(
                RleRow(
                    image_id,
                    (row["EncodedPixels"] or "").strip(),
                    line,
                    height,
                    width,
                    (row.get("Usage") or "").strip() or None,
                )
            )
    return rows


def decode_rows(
    rows: list[RleRow], shape: tuple[int, int], path: Path, dataset: str = "dsb2018"
) -> np.ndarray:
    """Instance map (int32, ids 1..N in file order) of one image's rows; DataError on bad rows.

    Rows without runs (an image without objects) take no id; masks must not overlap.  All rows
    are decoded together, straight into the map; rows that break a rule are decoded again one
    by one (:func:`_decode_rows_strictly`) to name the first bad line.
    """
    instances = _decode_rows_together(rows, shape)
    return _decode_rows_strictly(rows, shape, path, dataset) if instances is None else instances


def _decode_rows_together(rows: list[RleRow], shape: tuple[int, int]) -> np.ndarray | None:
    """The instance map of valid rows, or None if any row breaks a rule of the encoding."""
    height, width = shape
    values: list[int] = []
    runs_per_object: list[int] = []
    for row in rows:
        if row.height is not None and (row.height, row.width) != shape:
            return None
        tokens = row.encoded.split()
        if len(tokens) % 2:
            return None
        try:
            values += map(int, tokens)
        except ValueError:
            return None
        if tokens:  # a row without runs marks an image without objects: no id
            runs_per_object.append(len(tokens) // 2)
    instances = np.zeros(height * width, dtype=np.int32)
    if not values:
        return instances.reshape(shape)
    try:
        pairs = np.array(values, dtype=np.int64).reshape(-1, 2)
    except OverflowError:
        return None
    starts, lengths = pairs[:, 0] - 1, pairs[:, 1]  # 0-based column-major starts
    if starts.min() < 0 or lengths.min() < 1 or max(starts.max(), lengths.max()) > height * width:
        return None
    ends = starts + lengths  # exclusive; no overflow after the bounds above
    if ends.max() > height * width:
        return None
    ids = np.repeat(np.arange(1, len(runs_per_object) + 1, dtype=np.int32), runs_per_object)
    same_object = ids[1:] == ids[:-1]
    if (same_object & (starts[1:] < ends[:-1])).any():  # unsorted or overlapping in one row
        return None
    # every pixel of every run: its column-major index, then its row-major one
    total = int(lengths.sum())
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    column_major = offsets + np.arange(total, dtype=np.int64)
    columns, row_index = np.divmod(column_major, height)
    instances[row_index * width + columns] = np.repeat(ids, lengths)
    if np.count_nonzero(instances) != total:  # two objects share a pixel
        return None
    return instances.reshape(shape)


def _decode_rows_strictly(
    rows: list[RleRow], shape: tuple[int, int], path: Path, dataset: str
) -> np.ndarray:
    """Row by row, with the error of the first bad row (the reference for decode_rows)."""
    instances = np.zeros(shape, dtype=np.int32)
    index = 0
    for row in rows:
        if row.height is not None and (row.height, row.width) != shape:
            raise DataError(
                f"{dataset}: {path} line {row.line}: Height/Width {row.height}x{row.width} differ "
                f"from the image's {shape[0]}x{shape[1]}"
            )
        try:
            mask = rle_decode(row.encoded, shape)
        except ValueError as exc:
            raise DataError(
                f"{dataset}: {path} line {row.line} ({row.image_id}): bad RLE: {exc}"
            ) from exc
        if not mask.any():
            continue  # an empty encoding marks an image without objects
        if (instances[mask] > 0).any():
            raise DataError(
                f"{dataset}: {path} line {row.line}: mask overlaps an earlier mask of "
                f"{row.image_id}; masks of one image must not overlap"
            )
        index += 1
        instances[mask] = index
    return instances
