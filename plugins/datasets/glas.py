"""GlaS@MICCAI 2015 (Warwick-QU): colon histology glands, official flat layout.

Layout (one folder): ``Grade.csv``, ``<split>_<n>.bmp`` and ``<split>_<n>_anno.bmp`` for the
splits ``train`` (85), ``testA`` (60) and ``testB`` (20).  Lossless ``.png`` conversions (used
by several mirrors) are accepted too.  Annotations are single-channel instance maps, one id
per gland; the ids are kept as stored (15 glands have several pieces, so they are never
relabelled by connected components).  The official splits are kept as published (the contest
protocol); they share patients between training and test, which ``meta["patient"]`` records.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np

from harness import DataError, Sample, hookimpl
from harness.data import FileDataset, FileSpec, find_layout
from plugins.datasets._io import check_same_shape, natural_sorted, read_labels, read_rgb

SPLITS = {"train": 85, "testA": 60, "testB": 20}
EXTENSIONS = (".bmp", ".png")
MICRONS_PER_PIXEL = 0.62005
GRADE_CSV_SHA256 = "215e0cfcc70493ad221348de0e0006b58897e8d4e502e585e28e3e410108261f"
_NAME = re.compile(r"^(train|testA|testB)_(\d+)$")


@dataclass(frozen=True)
class Grade:
    patient: int
    grade_glas: str
    grade_sirinukunwattana: str


def parse_grades(path: Path, dataset: str = "glas") -> dict[str, Grade]:
    """Parse Grade.csv: any line ending (the original uses CR only), spaces around names and
    values stripped, columns found by name."""
    if not path.is_file():
        raise DataError(
            f"{dataset}: missing Grade.csv at {path}; it ships in the official GlaS zip"
        )
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    rows = [row for row in csv.reader(text.splitlines()) if any(cell.strip() for cell in row)]
    if not rows:
        raise DataError(f"{dataset}: {path} is empty; expected a header and one row per image")
    header = [cell.strip().lower() for cell in rows[0]]
    columns = {}
    for key, prefix in (
        ("name", "name"),
        ("patient", "patient"),
        ("glas", "grade (glas"),
        ("sirinukunwattana", "grade (sirinukunwattana"),
    ):
        found = [i for i, cell in enumerate(header) if cell.startswith(prefix)]
        if not found:
            raise DataError(
                f"{dataset}: {path} has no column starting with {prefix!r}; header is {rows[0]!r}, "
                "expected 'name,patient ID, grade (GlaS), grade (Sirinukunwattana et al. 2015)'"
            )
        columns[key] = found[0]
    grades = {}
    for number, row in enumerate(rows[1:], start=2):
        try:
            cells = {key: row[i].strip() for key, i in columns.items()}
            grades[cells["name"]] = Grade(
                int(cells["patient"]), cells["glas"], cells["sirinukunwattana"]
            )
        except (IndexError, ValueError) as exc:
            raise DataError(
                f"{dataset}: {path} line {number} is malformed ({row!r}): {exc}"
            ) from exc
    return grades


class GlaS(FileDataset):
    """GlaS 2015 gland segmentation; evaluated on testA and testB like the contest."""

    name = "glas"
    version = "1"
    description = "GlaS@MICCAI 2015 colon gland instance segmentation (165 H&E images, 20x)"
    provides = frozenset({"foreground", "instances"})
    splits = ("train", "testA", "testB")
    train_split = "train"
    eval_splits = ("testA", "testB")
    class_names = ("background", "gland")
    license = "Research use only (GlaS challenge data, Warwick-QU); see the challenge website"
    citation = (
        "K. Sirinukunwattana et al., Gland segmentation in colon histology images: The GlaS "
        "challenge contest. Medical Image Analysis 35:489-502, 2017. "
        "K. Sirinukunwattana, D. Snead, N. Rajpoot, A stochastic polygons model for glandular "
        "structures in colon histology images. IEEE TMI 34(11):2366-2378, 2015."
    )
    primary_metrics = ("object_f1", "object_dice", "object_hausdorff")
    #: Published results shipped with the package, usable as ``--reference glas2015``.
    references = {
        "glas2015": (
            "glas2015_contest.csv",
            "GlaS@MICCAI 2015 contest results (ten entries, test Parts A and B), Sirinukunwattana "
            "et al., Medical Image Analysis 35:489-502, 2017, Table 4",
        ),
    }
    homepage = "https://warwick.ac.uk/fac/cross_fac/tia/data/glascontest/"
    download_help = (
        "Download 'Warwick QU Dataset (Released 2016_07_08)' from "
        "https://warwick.ac.uk/fac/cross_fac/tia/data/glascontest/ (research use) and unzip it."
    )

    def __init__(
        self, root: Path | None = None, spacing: Literal["pixel", "micron"] = "pixel"
    ) -> None:
        """``spacing``: "pixel" (distances in pixels, as the contest reports them) or "micron"
        (``meta["spacing"]`` = 0.62005 µm per pixel on both axes)."""
        if spacing not in ("pixel", "micron"):
            raise ValueError(f"spacing must be 'pixel' or 'micron'; got {spacing!r}")
        self.root = root
        self.spacing = spacing

    @cached_property
    def folder(self) -> Path:
        """The folder holding Grade.csv (the official zip adds one nesting level)."""
        found = find_layout(self.directory, "Grade.csv") if self.directory.is_dir() else None
        if found is None:
            raise self.missing("Grade.csv (the GlaS dataset folder)", self.directory)
        return found

    @cached_property
    def _files(self) -> dict[str, tuple[Path, Path | None]]:
        """stem -> (image path, annotation path or None), from one directory listing."""
        names = {p.name: p for p in self.folder.iterdir()}
        files: dict[str, tuple[Path, Path | None]] = {}
        for filename, path in names.items():
            stem, dot, ext = filename.rpartition(".")
            if not dot or f".{ext.lower()}" not in EXTENSIONS or not _NAME.match(stem):
                continue
            anno = next(
                (names[f"{stem}_anno{e}"] for e in EXTENSIONS if f"{stem}_anno{e}" in names), None
            )
            files[stem] = (path, anno)
        return files

    @cached_property
    def grades(self) -> dict[str, Grade]:
        return parse_grades(self.folder / "Grade.csv", self.name)

    def sample_ids(self, split: str) -> list[str]:
        self._check_split(split)
        ids = natural_sorted(stem for stem in self._files if stem.split("_")[0] == split)
        if not ids:
            raise self.missing(f"images of split {split!r} ({split}_1.bmp …)", self.folder)
        return ids

    def _paths(self, split: str, sample_id: str) -> tuple[Path, Path]:
        self._check_split(split)
        if not sample_id.startswith(f"{split}_") or sample_id not in self._files:
            raise DataError(
                f"{self.name}: no image {sample_id!r} in split {split!r} under {self.folder}"
            )
        image, anno = self._files[sample_id]
        if anno is None:
            raise DataError(
                f"{self.name}: missing annotation for {image}: expected {sample_id}_anno.bmp "
                f"(or .png) beside it. {self.fix()}"
            )
        return image, anno

    def read_instances(self, split: str, sample_id: str) -> np.ndarray:
        """The stored instance map alone (no image decoding), H×W int32."""
        _, anno = self._paths(split, sample_id)
        return read_labels(anno, self.name, self.fix())

    def load(self, split: str, sample_id: str) -> Sample:
        image_path, anno_path = self._paths(split, sample_id)
        image = read_rgb(image_path, self.name, self.fix())
        instances = read_labels(anno_path, self.name, self.fix())
        check_same_shape(image, instances, anno_path, self.name, self.fix())
        grade = self.grades.get(sample_id)
        if grade is None:
            raise DataError(
                f"{self.name}: {self.folder / 'Grade.csv'} has no row for {sample_id!r}"
            )
        meta = {
            "split": split,
            "patient": grade.patient,
            "grade_glas": grade.grade_glas,
            "grade_sirinukunwattana": grade.grade_sirinukunwattana,
            "spacing": (1.0, 1.0) if self.spacing == "pixel" else (MICRONS_PER_PIXEL,) * 2,
            "microns_per_pixel": MICRONS_PER_PIXEL,
            "source": image_path.name,
        }
        return Sample(id=sample_id, image=image, instances=instances, meta=meta)

    def manifest(self) -> list[FileSpec]:
        prefix = self.folder.relative_to(self.directory)
        return [FileSpec(str(prefix / "Grade.csv"), 6832, GRADE_CSV_SHA256)]

    def check_layout(self) -> list[str]:
        problems = []
        for split, count in SPLITS.items():
            for n in range(1, count + 1):
                stem = f"{split}_{n}"
                if stem not in self._files:
                    problems.append(f"missing image {self.folder / stem}.bmp (or .png)")
                elif self._files[stem][1] is None:
                    problems.append(f"missing annotation {self.folder / stem}_anno.bmp (or .png)")
        return problems


@hookimpl
def bench_register_datasets(register):  # type: ignore[no-untyped-def]
    register(GlaS)
