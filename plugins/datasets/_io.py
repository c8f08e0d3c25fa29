"""Small readers shared by the dataset plugins: every failure becomes a DataError naming the file."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from harness import DataError


def natural_key(text: str) -> list[object]:
    """Sort key that orders ``train_2`` before ``train_10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def natural_sorted(items: Iterable[str]) -> list[str]:
    return sorted(items, key=natural_key)


def require_file(path: Path, dataset: str, what: str, fix: str) -> Path:
    if not path.is_file():
        raise DataError(f"{dataset}: missing {what}: expected the file {path}. {fix}")
    return path


def open_decoded(path: Path, dataset: str, fix: str) -> Image.Image:
    """Open an image file and decode it completely (use it in a ``with`` block)."""
    if not path.is_file():
        raise DataError(f"{dataset}: missing file {path}. {fix}")
    try:
        image = Image.open(path)
        try:
            image.load()
        except BaseException:
            image.close()
            raise
        return image
    except (OSError, ValueError, UnidentifiedImageError, SyntaxError) as exc:
        raise DataError(
            f"{dataset}: cannot decode {path} ({type(exc).__name__}: {exc}); the file is "
            f"truncated or not an image. {fix}"
        ) from exc


def read_array(path: Path, dataset: str, fix: str) -> tuple[np.ndarray, str]:
    """Decode an image file completely; return (array, PIL mode)."""
    with open_decoded(path, dataset, fix) as im:
        return np.asarray(im), im.mode


def read_rgb(path: Path, dataset: str, fix: str) -> np.ndarray:
    """Read an image as H×W×3 uint8 RGB (alpha dropped, grey expanded)."""
    with open_decoded(path, dataset, fix) as im:
        mode = im.mode
        if mode == "RGBA":  # PIL drops the alpha band in C: one pass instead of a strided copy
            return np.array(im.convert("RGB"))
        if mode == "P":
            array = np.asarray(im.convert("RGB"))
        elif mode in ("I;16", "I;16B", "I", "F"):
            raise DataError(f"{dataset}: {path} is a {mode} image; expected 8-bit RGB. {fix}")
        else:
            array = np.asarray(im)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    elif array.ndim == 3 and array.shape[2] in (3, 4):
        array = array[..., :3]
    elif array.ndim == 3 and array.shape[2] == 2:  # LA
        array = np.repeat(array[..., :1], 3, axis=2)
    else:
        raise DataError(f"{dataset}: {path} has shape {array.shape}; expected H×W×3 RGB. {fix}")
    if array.dtype != np.uint8:
        array = array.astype(np.uint8)
    return np.ascontiguousarray(array)


def read_labels(path: Path, dataset: str, fix: str) -> np.ndarray:
    """Read a single-channel label image as H×W int32, keeping the stored values.

    A palettised image yields its indices; a 3-channel one must be grey (R=G=B) and yields
    channel 0, as the official loaders of label images do.
    """
    array, mode = read_array(path, dataset, fix)
    if array.ndim == 3:
        if array.shape[2] == 4:
            array = array[..., :3]
        if array.shape[2] >= 2 and not (array == array[..., :1]).all():
            raise DataError(
                f"{dataset}: label image {path} has {array.shape[2]} differing channels; "
                f"expected a single-channel label map (mode {mode}). {fix}"
            )
        array = array[..., 0]
    if array.ndim != 2:
        raise DataError(
            f"{dataset}: label image {path} has shape {array.shape}; expected H×W. {fix}"
        )
    return array.astype(np.int32)


def check_same_shape(
    image: np.ndarray, labels: np.ndarray, path: Path, dataset: str, fix: str
) -> None:
    if labels.shape != image.shape[:2]:
        raise DataError(
            f"{dataset}: annotation {path} is {labels.shape[0]}×{labels.shape[1]} but its image "
            f"is {image.shape[0]}×{image.shape[1]}; expected the same height and width. {fix}"
        )


def image_size(path: Path, dataset: str, fix: str) -> tuple[int, int]:
    """(height, width) from the header only."""
    if not path.is_file():
        raise DataError(f"{dataset}: missing file {path}. {fix}")
    try:
        with Image.open(path) as im:
            return im.size[1], im.size[0]
    except (OSError, ValueError, UnidentifiedImageError) as exc:
        raise DataError(f"{dataset}: cannot read {path}: {exc}. {fix}") from exc
