"""Predictions made elsewhere, scored as ordinary cells (``bench score``), and saved predictions
written out as standard image files (``bench export``).

A prediction folder holds one label map per evaluation image, named by sample id:
``<id>.png`` (8- or 16-bit, one channel), ``<id>.tif``/``<id>.tiff`` or ``<id>.npy``; either
flat or in one sub-folder per split (``test/<id>.png``).  A dataset may also read its own
submission format (``Dataset.read_submission``: the DSB2018 run-length CSV).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from harness.predictions import PredictionReader, PredictionWriter
from harness.store import Store, sha256_file
from harness.types import DataError, Prediction

Kind = Literal["instances", "classes", "foreground"]
SUFFIXES = (".png", ".tif", ".tiff", ".npy")


class SubmissionError(ValueError):
    """A prediction folder or file that cannot be scored; the message names the files."""


def _listing(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def find_files(folder: Path, splits: Mapping[str, Sequence[str]]) -> dict[tuple[str, str], Path]:
    """(split, sample id) → file for every evaluation image; :class:`SubmissionError` naming
    the missing, extra or ambiguous files."""
    if not folder.is_dir():
        raise SubmissionError(f"--predictions {folder}: not a folder (give a folder of label maps, or a "
                              "submission file the dataset reads)")
    found: dict[tuple[str, str], Path] = {}
    problems: list[str] = []
    used: set[Path] = set()
    nested = all((folder / split).is_dir() for split in splits) and len(splits) > 0
    for split, ids in splits.items():
        base = folder / split if nested else folder
        files: dict[str, list[Path]] = {}
        for path in sorted(base.iterdir()):
            if path.is_file() and path.suffix.lower() in SUFFIXES and not path.name.startswith("."):
                files.setdefault(path.stem, []).append(path)
        missing = [sid for sid in ids if sid not in files]
        if missing:
            problems.append(f"{len(missing)} of {len(ids)} {split} images have no file in {base} "
                            f"({_listing(missing)}); name each file <sample id>{SUFFIXES[0]}")
        for sid in ids:
            paths = files.get(sid, [])
            if len(paths) > 1:
                problems.append(f"{sid} has {len(paths)} files ({_listing([p.name for p in paths])}); keep one")
            elif paths:
                found[(split, sid)] = paths[0]
                used.add(paths[0])
        if nested or split == list(splits)[-1]:
            extra = sorted(p.name for ps in files.values() for p in ps if p not in used)
            if extra:
                problems.append(f"{len(extra)} file(s) in {base} match no evaluation image "
                                f"({_listing(extra)}); remove them or check the dataset")
    if problems:
        raise SubmissionError("; ".join(problems))
    return found


def read_label_map(path: Path) -> np.ndarray:
    """One label map from PNG, TIFF or NPY (no pickle), as a 2-D integer array."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(path)
        else:
            from PIL import Image

            with Image.open(path) as im:
                arr = np.asarray(im)
    except Exception as exc:  # noqa: BLE001 - any decoder error names the file
        raise SubmissionError(f"{path}: cannot read it ({type(exc).__name__}: {exc})") from exc
    arr = np.squeeze(arr)
    if arr.ndim != 2:
        raise SubmissionError(f"{path}: shape {arr.shape}; expected one channel (a label map)")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.integer):
        raise SubmissionError(f"{path}: dtype {arr.dtype}; expected integer labels (0 = background)")
    if arr.size and int(arr.min()) < 0:
        raise SubmissionError(f"{path}: negative labels; expected 0 = background and positive ids")
    return arr.astype(np.int32)


def to_prediction(labels: np.ndarray, kind: Kind) -> Prediction:
    if kind == "instances":
        return Prediction(foreground=labels > 0, instances=labels)
    if kind == "classes":
        return Prediction(foreground=labels > 0, classes=labels)
    return Prediction(foreground=labels > 0)


def import_predictions(
    store: Store, pkey: str, source: Path, dataset: Any, kind: Kind, name: str,
) -> dict[str, Any]:
    """Turn a prediction folder (or a dataset's submission file) into a stored predict stage
    under ``pkey``; every file is checked against its image's size first."""
    splits = {s: dataset.sample_ids(s) for s in dataset.eval_splits}
    maps: dict[tuple[str, str], Any]  # a file, or a decoder taking the image's (height, width)
    if source.is_file():
        reader = getattr(dataset, "read_submission", None)
        if reader is None:
            raise SubmissionError(f"--predictions {source} is a file, and dataset {dataset.name!r} reads no "
                                  "submission files; give a folder of label maps named by sample id")
        try:
            read = reader(source)
        except DataError as exc:
            raise SubmissionError(str(exc)) from exc
        maps = {}
        missing = []
        for split, ids in splits.items():
            for sid in ids:
                if sid in read:
                    maps[(split, sid)] = read[sid]
                else:
                    missing.append(sid)
        extra = sorted(set(read) - {sid for ids in splits.values() for sid in ids})
        if missing or extra:
            raise SubmissionError(
                f"{source}: " + "; ".join(
                    ([f"{len(missing)} evaluation images have no rows ({_listing(missing)})"] if missing else [])
                    + ([f"{len(extra)} ImageIds match no evaluation image ({_listing(extra)})"] if extra else [])))
    else:
        maps = dict(find_files(source, splits))
    tmp = store.new_stage(pkey)
    index: list[dict[str, Any]] = []
    try:
        with PredictionWriter(tmp / "predictions.npz") as writer:
            for (split, sid), item in maps.items():
                shape = dataset.load(split, sid).image.shape[:2]
                if isinstance(item, Path):
                    labels = read_label_map(item)
                else:  # a submission reader decodes once the image's size is known
                    try:
                        labels = np.asarray(item(shape), dtype=np.int32)
                    except DataError as exc:
                        raise SubmissionError(str(exc)) from exc
                if labels.shape != shape:
                    where = item if isinstance(item, Path) else f"{source} ({sid})"
                    raise SubmissionError(f"{where}: size {labels.shape[0]}×{labels.shape[1]}, the image is "
                                          f"{shape[0]}×{shape[1]}")
                n, fields = writer.add(to_prediction(labels, kind))
                index.append({"split": split, "sample_id": sid, "status": "ok", "n": n, "fields": fields})
            saved = writer.close()
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    record = {"dataset": dataset.name, "method": name, "params": {}, "seed": 0, "submitted": True,
              "method_version": "submitted", "learns": False, "source": str(source), "kind": kind,
              "images": index, "predictions": {**saved, "bytes_per_image": saved["bytes"] / max(1, saved["images"])}}
    store.commit_stage(pkey, tmp, record)
    return record


def content_sha256(source: Path) -> str:
    """A sha256 over the prediction files (relative name and content): the key of their stage."""
    digest = hashlib.sha256()
    if source.is_file():
        digest.update(source.name.encode() + b"\0" + sha256_file(source).encode())
        return digest.hexdigest()
    for path in sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(path.relative_to(source).as_posix().encode() + b"\0" + sha256_file(path).encode() + b"\n")
    return digest.hexdigest()


# ---- export ----------------------------------------------------------------------------------


def export_stage(store: Store, stage: Mapping[str, Any], out: Path, dataset: Any | None = None,
                 overlays: bool = True) -> list[Path]:
    """Write a stage's saved predictions as 16-bit PNG label maps, ``<split>/<id>.png`` (the
    layout ``bench score`` reads back), class maps under ``classes/<split>/`` and, when the
    dataset's images are at hand, ``overlays/<split>/<id>.png`` with the reference (green) and
    predicted (magenta) contours."""
    from PIL import Image

    written: list[Path] = []
    with PredictionReader(store.stage_dir(stage["key"]) / "predictions.npz") as reader:
        for entry in stage["images"]:
            if "n" not in entry:
                continue
            pred = reader.get(entry["n"])
            split, name = entry["split"], f"{entry['sample_id']}.png"
            labels = pred.instances if pred.instances is not None else (
                pred.foreground.astype(np.int32) if pred.foreground is not None else None)
            if labels is not None:
                path = _fresh(out / split / name)
                Image.fromarray(_as_png_labels(labels, path)).save(path)
                written.append(path)
            if pred.classes is not None:
                path = _fresh(out / "classes" / split / name)
                Image.fromarray(_as_png_labels(pred.classes, path)).save(path)
                written.append(path)
            if overlays and dataset is not None and labels is not None:
                sample = dataset.load(split, entry["sample_id"])
                path = _fresh(out / "overlays" / split / name)
                reference = sample.instances if sample.instances is not None else sample.foreground.astype(np.int32)
                Image.fromarray(overlay(sample.image, reference, labels)).save(path)
                written.append(path)
    return written


def _fresh(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _as_png_labels(labels: np.ndarray, path: Path) -> np.ndarray:
    if int(labels.max(initial=0)) > np.iinfo(np.uint16).max:
        raise SubmissionError(f"{path}: {int(labels.max())} labels do not fit a 16-bit PNG")
    return labels.astype(np.uint16)


def contours(labels: np.ndarray) -> np.ndarray:
    """Pixels of an object whose 4-neighbour belongs to another label (or the background)."""
    edge = np.zeros(labels.shape, dtype=bool)
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    return edge & (labels > 0)


REFERENCE_COLOUR = (0, 200, 0)
PREDICTED_COLOUR = (230, 0, 230)


def overlay(image: np.ndarray, reference: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """The image with reference contours in green and predicted contours in magenta."""
    out = np.array(image[..., :3], dtype=np.uint8, copy=True)
    out[contours(reference)] = REFERENCE_COLOUR
    out[contours(predicted)] = PREDICTED_COLOUR
    return out
