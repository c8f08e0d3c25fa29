"""Kaggle Data Science Bowl 2018 (BBBC038v1) stage 1, official layout.

``stage1_train/<ImageId>/images/<ImageId>.png`` (RGBA) with one PNG per nucleus in ``masks/``
(or, without the folders' masks, the RLE rows of ``stage1_train_labels.csv``).  The stage-1
test images (``stage1_test/``) are used as the test split when ``stage1_solution.csv`` is
present; otherwise (protocol ``holdout``) stage1_train is split into train / validation / test
by a fixed rule: within each image type (fluorescence, brightfield, histology, derived from the
pixels: dark background = fluorescence, bright grey = brightfield, bright colour = histology),
images are ordered by ``sha256("<split_seed>:<ImageId>")`` and the first ``test_fraction`` go
to test, the next ``validation_fraction`` to validation (at least one each when a type has 3 or
more images), the rest to train.  The ids of every split are part of ``fingerprint()``.
With the stage-1 test set present (protocol ``stage1``, the benchmark protocol), only the
validation part is carved out of stage1_train by that rule; the rest of stage1_train is the
training split and the 65 stage-1 test images are the test split.

Image types come from the packaged table ``data/dsb2018_types.csv`` (every released stage-1
image, regenerated and checked by ``scripts/make_dsb2018_types.py`` with :func:`image_type`,
provenance in ``data/dsb2018_types.PROVENANCE.md``), so planning decodes no image.  An image
missing from the table is classified from its pixels, once per process and file version; one
that cannot be read is typed ``unreadable`` (a stratum of its own), so it fails only its own
cell image, not the plan.
"""

from __future__ import annotations

import csv
import hashlib
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np

from harness import DataError, Sample, hookimpl
from harness.data import FileDataset
from plugins.datasets._io import image_size, open_decoded, read_rgb
from plugins.datasets.rle import RleRow, decode_rows, read_rle_csv

TYPES = ("fluorescence", "brightfield", "histology")
FULL_RELEASE = {"images": 670, "masks": 29461}
STAGE1_TEST = {"images": 65, "objects": 4152}
UNREADABLE = "unreadable"
_PIXEL_TYPES: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> type, images outside the table


def image_type(image: np.ndarray) -> str:
    """fluorescence (dark background), brightfield (bright, grey) or histology (bright, colour)."""
    rgb = np.asarray(image)[::2, ::2, :3].astype(np.int16)
    grey = float(np.abs(rgb - rgb[..., :1]).mean()) < 1.0
    background = float(np.median(rgb.mean(axis=2)))
    if background < 128:
        return "fluorescence"
    return "brightfield" if grey else "histology"


@cache
def _type_table() -> dict[str, str]:
    """The packaged table: ImageId -> type of every released stage-1 image (train and test)."""
    table = resources.files("plugins.datasets") / "data" / "dsb2018_types.csv"
    rows = csv.DictReader(table.read_text(encoding="utf-8").splitlines())
    return {row["image_id"]: row["type"] for row in rows}


def known_types() -> dict[str, str]:
    """Image types of released stage-1 images (a copy of the packaged table)."""
    return dict(_type_table())


def stratified_split(
    types: dict[str, str], seed: int, validation_fraction: float, test_fraction: float
) -> dict[str, list[str]]:
    """The documented hash-ordered split within each image type (see the module docstring)."""
    out: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    for kind in sorted(set(types.values())):
        ids = sorted(
            (i for i, t in types.items() if t == kind),
            key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest(),
        )
        n = len(ids)
        n_test = max(1, round(n * test_fraction)) if n >= 3 and test_fraction > 0 else 0
        n_val = max(1, round(n * validation_fraction)) if n >= 3 and validation_fraction > 0 else 0
        out["test"] += ids[:n_test]
        out["validation"] += ids[n_test : n_test + n_val]
        out["train"] += ids[n_test + n_val :]
    return {split: sorted(ids) for split, ids in out.items()}


class DSB2018(FileDataset):
    """DSB 2018 stage 1 nuclei (fluorescence, brightfield and H&E), instance segmentation."""

    name = "dsb2018"
    version = "1"
    description = "Data Science Bowl 2018 stage 1 nuclei (BBBC038v1), official layout"
    provides = frozenset({"foreground", "instances"})
    splits = ("train", "validation", "test")
    train_split = "train"
    eval_splits = ("test",)
    class_names = ("background", "nucleus")
    license = "CC0-1.0 (BBBC038v1, Broad Bioimage Benchmark Collection)"
    citation = (
        "J. C. Caicedo et al., Nucleus segmentation across imaging experiments: the 2018 Data "
        "Science Bowl. Nature Methods 16:1247-1253, 2019. Image set BBBC038v1 (Ljosa et al., "
        "Nature Methods 9:637, 2012)."
    )
    primary_metrics = ("dsb_map", "aji", "dice")
    homepage = "https://bbbc.broadinstitute.org/BBBC038"
    download_help = (
        "Download stage1_train.zip (and stage1_test.zip with stage1_solution.csv) from "
        "https://bbbc.broadinstitute.org/BBBC038 or the Kaggle competition "
        "'data-science-bowl-2018' and unzip stage1_train.zip into stage1_train/."
    )

    def __init__(
        self,
        root: Path | None = None,
        protocol: Literal["auto", "holdout", "stage1"] = "auto",
        split_seed: int = 0,
        validation_fraction: float = 0.1,
        test_fraction: float = 0.2,
    ) -> None:
        if protocol not in ("auto", "holdout", "stage1"):
            raise ValueError(f"protocol must be auto, holdout or stage1; got {protocol!r}")
        self.root = root
        self.protocol = protocol
        self.split_seed = split_seed
        self.validation_fraction = validation_fraction
        self.test_fraction = test_fraction

    # ---- layout -------------------------------------------------------------------
    def _stage(self, stage: str) -> Path:
        return self.directory / stage

    @cached_property
    def train_ids(self) -> list[str]:
        folder = self._stage("stage1_train")
        if not folder.is_dir():
            raise self.missing("stage1_train/ (one folder per image)", folder)
        ids = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not ids:
            raise DataError(f"{self.name}: {folder} has no image folders. {self.fix()}")
        return ids

    @property
    def uses_stage1_test(self) -> bool:
        present = (self.directory / "stage1_solution.csv").is_file() and self._stage("stage1_test").is_dir()
        if self.protocol == "stage1" and not present:
            raise self.missing("stage1_test/ with stage1_solution.csv (protocol 'stage1')", self.directory)
        return self.protocol == "stage1" or (self.protocol == "auto" and present)

    @cached_property
    def types(self) -> dict[str, str]:
        """ImageId -> type for every stage1_train image on disk (table, else the pixels)."""
        table = known_types()
        return {i: table.get(i) or self._type_from_pixels("stage1_train", i) for i in self.train_ids}

    def _type_from_pixels(self, stage: str, image_id: str) -> str:
        """The type of an image missing from the table, classified once per process and file
        version (path, size, mtime), however many dataset objects ask."""
        path = self._image_path(stage, image_id)
        try:
            stat = path.stat()
        except OSError:
            return UNREADABLE  # the image's own load reports the missing file
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in _PIXEL_TYPES:
            try:
                _PIXEL_TYPES[key] = image_type(self._read_image(stage, image_id))
            except DataError:
                _PIXEL_TYPES[key] = UNREADABLE  # the image's own load reports the file; planning goes on
        return _PIXEL_TYPES[key]

    def protocol_summary(self) -> str:
        """One sentence: which files each split comes from (``bench data info`` prints it)."""
        if self.uses_stage1_test:
            return (
                "stage1: fit on stage1_train (a seeded, type-stratified "
                f"{self.validation_fraction:.0%} validation part for model selection, "
                f"split_seed={self.split_seed}); evaluate on the official stage1_test images "
                "scored against stage1_solution.csv (comparable with stage-1 leaderboard scores)"
            )
        return (
            "holdout: stage1_solution.csv or stage1_test/ is absent, so stage1_train is split "
            f"by image type into train / validation {self.validation_fraction:.0%} / test "
            f"{self.test_fraction:.0%} (split_seed={self.split_seed}); scores are not comparable "
            "with the official stage-1 test"
        )

    @cached_property
    def split_ids(self) -> dict[str, list[str]]:
        if self.uses_stage1_test:
            split = stratified_split(self.types, self.split_seed, self.validation_fraction, 0.0)
            split["test"] = sorted(self._solution)
            return split
        return stratified_split(self.types, self.split_seed, self.validation_fraction, self.test_fraction)

    @cached_property
    def _solution(self) -> dict[str, list[RleRow]]:
        return read_rle_csv(self.directory / "stage1_solution.csv", self.name)

    @cached_property
    def _train_labels(self) -> dict[str, list[RleRow]]:
        return read_rle_csv(self.directory / "stage1_train_labels.csv", self.name)

    # ---- reading --------------------------------------------------------------------
    def _image_path(self, stage: str, image_id: str) -> Path:
        return self._stage(stage) / image_id / "images" / f"{image_id}.png"

    def _read_image(self, stage: str, image_id: str) -> np.ndarray:
        return read_rgb(self._image_path(stage, image_id), self.name, self.fix())

    def mask_paths(self, image_id: str) -> list[Path]:
        folder = self._stage("stage1_train") / image_id / "masks"
        return sorted(folder.glob("*.png")) if folder.is_dir() else []

    def read_instances(self, stage: str, image_id: str, shape: tuple[int, int]) -> np.ndarray:
        """Instance map: per-nucleus PNGs (ids 1..N in MaskId order), else the RLE rows."""
        paths = self.mask_paths(image_id) if stage == "stage1_train" else []
        if paths:
            instances = np.zeros(shape, dtype=np.int32)
            fix = self.fix()
            for index, path in enumerate(paths, start=1):
                self._paint_mask(instances, path, index, fix)
            return instances
        csv_path = self.directory / ("stage1_train_labels.csv" if stage == "stage1_train" else "stage1_solution.csv")
        if not csv_path.is_file():
            raise DataError(
                f"{self.name}: no annotation for {image_id}: expected PNG masks in "
                f"{self._stage(stage) / image_id / 'masks'} or RLE rows in {csv_path}. {self.fix()}"
            )
        table = self._train_labels if stage == "stage1_train" else self._solution
        if image_id not in table:
            raise DataError(f"{self.name}: {csv_path} has no rows for image {image_id}. {self.fix()}")
        return decode_rows(table[image_id], shape, csv_path, self.name)

    def _paint_mask(self, instances: np.ndarray, path: Path, index: int, fix: str) -> None:
        """Give ``index`` to the pixels of the nucleus mask at ``path`` (channel 0 > 0) that no
        earlier mask holds: where masks overlap, the first in MaskId order keeps the pixel."""
        with open_decoded(path, self.name, fix) as im:
            if (im.height, im.width) != instances.shape:
                raise DataError(
                    f"{self.name}: mask {path} is {im.height}×{im.width} but its image is "
                    f"{instances.shape[0]}×{instances.shape[1]}; expected the same size. {fix}"
                )
            if im.mode == "L":  # the released masks: crop to the nonzero box in C, then copy
                box = im.getbbox()
                if box is None:
                    return
                left, top, right, bottom = box
                mask = np.asarray(im.crop(box))
                region = instances[top:bottom, left:right]
            else:
                mask = np.asarray(im)
                if mask.ndim == 3:
                    mask = mask[..., 0]
                region = instances
        region[(mask > 0) & (region == 0)] = index

    def sample_ids(self, split: str) -> list[str]:
        self._check_split(split)
        return list(self.split_ids[split])

    def load(self, split: str, sample_id: str) -> Sample:
        self._check_split(split)
        if sample_id not in self.split_ids[split]:
            raise DataError(f"{self.name}: no image {sample_id!r} in split {split!r}")
        stage = "stage1_test" if split == "test" and self.uses_stage1_test else "stage1_train"
        image = self._read_image(stage, sample_id)
        instances = self.read_instances(stage, sample_id, image.shape[:2])
        meta: dict[str, object] = {
            "split": split,
            "stage": stage,
            "type": self.types.get(sample_id) or _type_table().get(sample_id) or image_type(image),
            "source": f"{stage}/{sample_id}",
            "spacing": (1.0, 1.0),
        }
        if stage == "stage1_test":
            meta["usage"] = sorted({r.usage or "" for r in self._solution[sample_id]})
        return Sample(id=sample_id, image=image, instances=instances, meta=meta)

    # ---- verification ---------------------------------------------------------------
    def read_submission(self, path: Path):  # type: ignore[no-untyped-def]
        """A Kaggle-style submission CSV (``ImageId,EncodedPixels``, one row per nucleus, RLE
        as in the competition) for ``bench score``: image id → decoder taking the image's
        (height, width)."""
        rows = read_rle_csv(Path(path), self.name)
        return {image_id: (lambda shape, r=r: decode_rows(r, shape, Path(path), self.name))
                for image_id, r in rows.items()}

    def check_layout(self) -> list[str]:
        problems = []
        n_masks = 0
        for image_id in self.train_ids:
            path = self._image_path("stage1_train", image_id)
            if not path.is_file():
                problems.append(f"missing image {path}")
                continue
            masks = self.mask_paths(image_id)
            n_masks += len(masks)
            if not masks and not (self.directory / "stage1_train_labels.csv").is_file():
                problems.append(f"no masks in {path.parent.parent / 'masks'} and no stage1_train_labels.csv")
            if masks and image_size(masks[0], self.name, "") != image_size(path, self.name, ""):
                problems.append(f"mask {masks[0]} differs in size from {path}")
        problems += self._check_stage1_test()
        if len(self.train_ids) == FULL_RELEASE["images"] and n_masks not in (
            0,
            FULL_RELEASE["masks"],
        ):
            problems.append(f"{n_masks} mask files; the full release has {FULL_RELEASE['masks']}")
        return problems

    def _check_stage1_test(self) -> list[str]:
        """The stage-1 test images and the solution's rows name the same images."""
        folder, solution = self._stage("stage1_test"), self.directory / "stage1_solution.csv"
        if not (folder.is_dir() and solution.is_file()):
            return []
        problems = []
        ids = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        for image_id in ids:
            if not self._image_path("stage1_test", image_id).is_file():
                problems.append(f"missing image {self._image_path('stage1_test', image_id)}")
        try:
            rows = self._solution
        except DataError as exc:
            return [*problems, str(exc)]
        for image_id in sorted(set(ids) - set(rows)):
            problems.append(f"{solution} has no rows for stage1_test image {image_id}")
        for image_id in sorted(set(rows) - set(ids)):
            problems.append(f"{solution} has rows for {image_id}, which is not in {folder}")
        return problems


@hookimpl
def bench_register_datasets(register):  # type: ignore[no-untyped-def]
    register(DSB2018)
