"""NuCLS (Amgad et al.): breast-cancer nuclei in fields of view (FOVs), classified, TCGA slides.

Layout: ``rgb/<FOV>.png`` (older copies: ``rgbs/``), ``csv/<FOV>.csv`` (one row per nucleus),
``mask/<FOV>.png`` and ``train_test_splits/fold_<k>_{train,test}.csv`` (columns ``slide_name``,
``hospital``; folds group slides by hospital, so no patient is on both sides).  A FOV name
starts with its slide (``TCGA-A2-A0SX-DX1_id-…_left-…_top-…_bottom-…_right-…``).

Mask channel 0 is the class code (0 outside the FOV, 253 FOV background, 1-12 and 99 the raw
nucleus classes); channels 1 and 2 are an object pair whose (ch1, ch2) combination identifies a
nucleus (never their uint8 product, which wraps and repeats).  Pixels outside the FOV (code 0)
are excluded from scoring via ``Sample.ignore``.  ``classes`` maps raw codes to the super
classes (default) or main classes of the NuCLS paper.
"""

from __future__ import annotations

import csv
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np

from harness import DataError, Sample, hookimpl
from harness.data import FileDataset
from plugins.datasets._io import read_array, read_rgb

OUTSIDE, FOV = 0, 253
RAW = {
    1: "tumor",
    2: "fibroblast",
    3: "lymphocyte",
    4: "plasma_cell",
    5: "macrophage",
    6: "mitotic_figure",
    7: "vascular_endothelium",
    8: "myoepithelium",
    9: "apoptotic_body",
    10: "neutrophil",
    11: "ductal_epithelium",
    12: "eosinophil",
    99: "unlabeled",
}
MAIN: tuple[str, ...] = (
    "background",
    "tumor_nonMitotic",
    "tumor_mitotic",
    "nonTILnonMQ_stromal",
    "macrophage",
    "lymphocyte",
    "plasma_cell",
    "other_nucleus",
    "AMBIGUOUS",
)
SUPER: tuple[str, ...] = (
    "background",
    "tumor_any",
    "nonTIL_stromal",
    "sTIL",
    "other_nucleus",
    "AMBIGUOUS",
)
RAW_TO_MAIN = {1: 1, 2: 3, 3: 5, 4: 6, 5: 4, 6: 2, 7: 3, 8: 7, 9: 8, 10: 7, 11: 7, 12: 7, 99: 8}
MAIN_TO_SUPER = {1: 1, 2: 1, 3: 2, 4: 2, 5: 3, 6: 3, 7: 4, 8: 5}


def slide_of(fov: str) -> str:
    return fov.split("_id")[0]


def mask_to_maps(
    mask: np.ndarray, path: Path, level: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(instances, classes, ignore) of one NuCLS object mask (H×W×3 or ×4 uint8)."""
    if mask.ndim != 3 or mask.shape[2] < 3:
        raise DataError(
            f"nucls: mask {path} has shape {mask.shape}; expected H×W×3 (class, pair a, pair b)"
        )
    code = mask[..., 0].astype(np.int32)
    unknown = set(np.unique(code).tolist()) - set(RAW) - {OUTSIDE, FOV}
    if unknown:
        raise DataError(
            f"nucls: mask {path} has unknown class codes {sorted(unknown)} in channel 0"
        )
    nucleus = (code != OUTSIDE) & (code != FOV)
    key = mask[..., 1].astype(np.int32) * 256 + mask[..., 2].astype(np.int32)
    instances = np.zeros(code.shape, dtype=np.int32)
    _, inverse = np.unique(key[nucleus], return_inverse=True)
    instances[nucleus] = inverse.reshape(-1) + 1
    lut = np.zeros(256, dtype=np.int32)
    for raw, main in RAW_TO_MAIN.items():
        lut[raw] = main if level == "main" else MAIN_TO_SUPER[main]
    classes = np.where(nucleus, lut[np.clip(code, 0, 255)], 0).astype(np.int32)
    return instances, classes, code == OUTSIDE


class NuCLS(FileDataset):
    """NuCLS single-rater corrected set, hospital-grouped folds."""

    name = "nucls"
    version = "1"
    description = (
        "NuCLS breast-cancer nuclei (TCGA FOVs at 0.2 um/px), classes, hospital-grouped folds"
    )
    provides = frozenset({"foreground", "instances", "classes"})
    splits = ("train", "test")
    train_split = "train"
    eval_splits = ("test",)
    class_names = SUPER
    license = "CC0-1.0 (NuCLS dataset)"
    citation = (
        "M. Amgad et al., NuCLS: A scalable crowdsourcing approach and dataset for nucleus "
        "classification and segmentation in breast cancer. GigaScience 11:giac037, 2022."
    )
    primary_metrics = ("pq", "aji", "dice")
    homepage = "https://sites.google.com/view/nucls/"
    download_help = (
        "Download the corrected single-rater NuCLS dataset from "
        "https://sites.google.com/view/nucls/ and unzip it here."
    )

    def __init__(
        self,
        root: Path | None = None,
        fold: int = 1,
        class_level: Literal["super", "main"] = "super",
    ) -> None:
        if class_level not in ("super", "main"):
            raise ValueError(f"class_level must be 'super' or 'main'; got {class_level!r}")
        self.root = root
        self.fold = fold
        self.class_level = class_level
        if class_level == "main":
            self.class_names = MAIN  # type: ignore[misc]

    def _folder(self, *names: str) -> Path:
        for name in names:
            if (self.directory / name).is_dir():
                return self.directory / name
        raise self.missing(f"the {names[0]}/ folder", self.directory / names[0])

    @cached_property
    def _fovs(self) -> list[str]:
        return sorted(p.stem for p in self._folder("rgb", "rgbs").glob("*.png"))

    @cached_property
    def _slides(self) -> dict[str, set[str]]:
        out = {}
        for split in self.splits:
            path = self.directory / "train_test_splits" / f"fold_{self.fold}_{split}.csv"
            if not path.is_file():
                raise self.missing(
                    f"fold {self.fold} {split} list (train_test_splits/fold_<k>_<split>.csv)", path
                )
            with open(path, newline="") as fh:
                reader = csv.DictReader(fh)
                if "slide_name" not in (reader.fieldnames or []):
                    raise DataError(
                        f"{self.name}: {path} has no slide_name column (header {reader.fieldnames})"
                    )
                out[split] = {row["slide_name"].strip() for row in reader}
        both = out["train"] & out["test"]
        if both:
            raise DataError(
                f"{self.name}: fold {self.fold} lists slides in both train and test: {sorted(both)}"
            )
        return out

    def sample_ids(self, split: str) -> list[str]:
        self._check_split(split)
        return [f for f in self._fovs if slide_of(f) in self._slides[split]]

    def load(self, split: str, sample_id: str) -> Sample:
        if sample_id not in self.sample_ids(split):
            raise DataError(
                f"{self.name}: no FOV {sample_id!r} in split {split!r} (fold {self.fold})"
            )
        image_path = self._folder("rgb", "rgbs") / f"{sample_id}.png"
        mask_path = self.directory / "mask" / f"{sample_id}.png"
        image = read_rgb(image_path, self.name, self.fix())
        mask, _ = read_array(mask_path, self.name, self.fix())
        if mask.shape[:2] != image.shape[:2]:
            raise DataError(
                f"{self.name}: mask {mask_path} is {mask.shape[:2]} but its image is {image.shape[:2]}"
            )
        instances, classes, ignore = mask_to_maps(mask, mask_path, self.class_level)
        rows = self._rows(sample_id)
        meta = {
            "split": split,
            "fold": self.fold,
            "slide": slide_of(sample_id),
            "patient": "-".join(slide_of(sample_id).split("-")[:3]),
            "hospital": slide_of(sample_id).split("-")[1] if "-" in sample_id else "",
            "nuclei_in_csv": len(rows),
            "boxes_only": sum(r.get("type") == "rectangle" for r in rows),
            "spacing": (1.0, 1.0),
            "microns_per_pixel": 0.2,
        }
        return Sample(
            id=sample_id,
            image=image,
            instances=instances,
            classes=classes,
            meta=meta,
            ignore=ignore,
        )

    def _rows(self, fov: str) -> list[dict[str, str]]:
        path = self.directory / "csv" / f"{fov}.csv"
        if not path.is_file():
            raise self.missing(f"the nucleus table of {fov}", path)
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh))


@hookimpl
def bench_register_datasets(register):  # type: ignore[no-untyped-def]
    register(NuCLS)
