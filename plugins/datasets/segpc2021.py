"""SegPC-2021: multiple-myeloma plasma cells, nucleus and cytoplasm, one mask file per cell.

Layout (unzipping may nest it several levels deep, so the folders are searched for):
``train/x/<id>.bmp`` with ``train/y/<id>_<k>.bmp`` (one per annotated cell, k from 1 with
gaps), the same for ``validation/``; ``test/x`` has no labels and is not offered.  In a mask,
40 is the nucleus and any other non-zero value the cytoplasm (0 background); 3-channel masks
are read from channel 0.  Instance id = k (as given); ``classes`` is 1 cytoplasm, 2 nucleus.
Where two cells overlap, the one with the larger k is kept.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from harness import DataError, Sample, hookimpl
from harness.data import FileDataset
from plugins.datasets._io import (
    check_same_shape,
    natural_key,
    natural_sorted,
    read_labels,
    read_rgb,
)

NUCLEUS = 40
RELEASE = {"train": 298, "validation": 200}


class SegPC2021(FileDataset):
    """SegPC-2021 plasma-cell instance segmentation with nucleus / cytoplasm classes."""

    name = "segpc2021"
    version = "1"
    description = (
        "SegPC-2021 multiple myeloma plasma cells (bone-marrow aspirates), nucleus + cytoplasm"
    )
    provides = frozenset({"foreground", "instances", "classes"})
    splits = ("train", "validation")
    train_split = "train"
    eval_splits = ("validation",)
    class_names = ("background", "cytoplasm", "nucleus")
    license = "CC BY 4.0 (TCIA SegPC-2021)"
    citation = (
        "A. Gupta et al., SegPC-2021: A challenge & dataset on segmentation of multiple myeloma "
        "plasma cells from microscopic images. Medical Image Analysis 83:102677, 2023. Data: "
        "The Cancer Imaging Archive, doi:10.7937/tcia.bbgq-y554."
    )
    primary_metrics = ("iou", "aji", "dice")
    homepage = "https://segpc-2021.grand-challenge.org/"
    download_help = (
        "Download TCIA_SegPC_dataset.zip from The Cancer Imaging Archive "
        "(doi:10.7937/tcia.bbgq-y554) and unzip it, including the inner train.zip and validation.zip."
    )

    def __init__(self, root: Path | None = None) -> None:
        self.root = root

    @cached_property
    def _folders(self) -> dict[str, Path]:
        """split -> the folder holding its x/ and y/ (searched, since zips nest them)."""
        if not self.directory.is_dir():
            raise self.missing("the SegPC-2021 folder", self.directory)
        found: dict[str, Path] = {}
        for x in sorted(self.directory.rglob("x"), key=lambda p: len(p.parts)):
            if not x.is_dir() or "__MACOSX" in x.parts:
                continue
            # the nearest enclosing folder named after a split ("validation/validation/x" too)
            split = next(
                (
                    p.name.lower()
                    for p in x.relative_to(self.directory).parents
                    if p.name.lower() in self.splits
                ),
                None,
            )
            if split is not None and split not in found:
                found[split] = x.parent
        return found

    def _split_folder(self, split: str) -> Path:
        self._check_split(split)
        if split not in self._folders:
            raise self.missing(f"{split}/x/ (images) and {split}/y/ (masks)", self.directory)
        return self._folders[split]

    @cached_property
    def _masks(self) -> dict[str, dict[str, list[Path]]]:
        """split -> image id -> its mask files, sorted by k."""
        out: dict[str, dict[str, list[Path]]] = {}
        for split in self._folders:
            groups: dict[str, list[Path]] = {}
            y = self._folders[split] / "y"
            for path in y.glob("*.bmp") if y.is_dir() else []:
                groups.setdefault(path.stem.split("_")[0], []).append(path)
            out[split] = {
                k: sorted(v, key=lambda p: natural_key(p.stem)) for k, v in groups.items()
            }
        return out

    def sample_ids(self, split: str) -> list[str]:
        x = self._split_folder(split) / "x"
        return natural_sorted(p.stem for p in x.glob("*.bmp") if "_" not in p.stem)

    def load(self, split: str, sample_id: str) -> Sample:
        folder = self._split_folder(split)
        image_path = folder / "x" / f"{sample_id}.bmp"
        image = read_rgb(image_path, self.name, self.fix())
        masks = self._masks.get(split, {}).get(sample_id, [])
        if not masks:
            raise DataError(
                f"{self.name}: missing annotation for {image_path}: expected mask files "
                f"{folder / 'y' / sample_id}_<k>.bmp. {self.fix()}"
            )
        instances = np.zeros(image.shape[:2], dtype=np.int32)
        classes = np.zeros(image.shape[:2], dtype=np.int32)
        for path in masks:
            mask = read_labels(path, self.name, self.fix())
            check_same_shape(image, mask, path, self.name, self.fix())
            suffix = path.stem.split("_", 1)[1] if "_" in path.stem else ""
            if not suffix.isdigit():
                raise DataError(f"{self.name}: mask {path} is not named <image id>_<k>.bmp")
            cell = mask > 0
            instances[cell] = int(suffix)
            classes[cell] = np.where(mask[cell] == NUCLEUS, 2, 1)
        meta = {
            "split": split,
            "source": str(image_path.relative_to(self.directory)),
            "cells": len(masks),
            "spacing": (1.0, 1.0),
        }
        return Sample(id=sample_id, image=image, instances=instances, classes=classes, meta=meta)

    def check_layout(self) -> list[str]:
        problems = []
        for split, expected in RELEASE.items():
            try:
                ids = self.sample_ids(split)
            except DataError as exc:
                problems.append(str(exc))
                continue
            if len(ids) != expected:
                problems.append(f"{len(ids)} {split} images; the release has {expected}")
            masks = self._masks.get(split, {})
            problems += [f"no masks for {split} image {i}" for i in ids if i not in masks]
        return problems


@hookimpl
def bench_register_datasets(register):  # type: ignore[no-untyped-def]
    register(SegPC2021)
