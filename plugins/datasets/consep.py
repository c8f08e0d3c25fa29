"""CoNSeP (HoVer-Net): colorectal adenocarcinoma nuclei, 1000×1000 tiles at 40×, 7 classes.

Layout of consep_dataset.zip: ``CoNSeP/{Train,Test}/Images/<split>_<n>.png`` with
``Labels/<split>_<n>.mat`` (keys ``inst_map``, ``type_map``, ``inst_type``, ``inst_centroid``;
read with scipy) — or, in copies made before 14/03/2020, ``Labels/<stem>.npy`` of shape H×W×2
(instance, type).  With ``merge_classes`` (default, the usual protocol) the 7 types become 4:
1 other, 2 inflammatory, 3 epithelial (3, 4), 4 spindle-shaped (5, 6, 7).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.io

from harness import DataError, Sample, hookimpl
from harness.data import FileDataset, find_layout
from plugins.datasets._io import check_same_shape, natural_sorted, read_rgb

TYPES: tuple[str, ...] = (
    "background",
    "other",
    "inflammatory",
    "healthy epithelial",
    "dysplastic/malignant epithelial",
    "fibroblast",
    "muscle",
    "endothelial",
)
MERGED: tuple[str, ...] = ("background", "other", "inflammatory", "epithelial", "spindle-shaped")
MERGE = np.array([0, 1, 2, 3, 3, 4, 4, 4], dtype=np.int32)
FOLDERS = {"train": "Train", "test": "Test"}
RELEASE = {"train": 27, "test": 14}


def read_label_file(path: Path, dataset: str = "consep") -> tuple[np.ndarray, np.ndarray]:
    """(inst_map, type_map) as int32 from a CoNSeP ``.mat`` (or legacy ``.npy``) label file."""
    if not path.is_file():
        raise DataError(f"{dataset}: missing label file {path}")
    try:
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
            if array.ndim != 3 or array.shape[2] != 2:
                raise DataError(
                    f"{dataset}: {path} has shape {array.shape}; expected H×W×2 (instance, type)"
                )
            return array[..., 0].astype(np.int32), array[..., 1].astype(np.int32)
        content = scipy.io.loadmat(path)
    except (OSError, ValueError, TypeError, scipy.io.matlab.MatReadError) as exc:
        raise DataError(
            f"{dataset}: cannot read {path} ({exc}); expected a MATLAB .mat label file"
        ) from exc
    missing = [k for k in ("inst_map", "type_map") if k not in content]
    if missing:
        raise DataError(
            f"{dataset}: {path} lacks {', '.join(missing)}; expected keys inst_map, type_map"
        )
    inst, types = np.asarray(content["inst_map"]), np.asarray(content["type_map"])
    if inst.ndim != 2 or inst.shape != types.shape:
        raise DataError(
            f"{dataset}: {path}: inst_map {inst.shape} and type_map {types.shape}; expected two H×W maps"
        )
    if types.size and (types.min() < 0 or types.max() > 7):
        raise DataError(f"{dataset}: {path}: type_map values outside 0..7")
    return inst.astype(np.int32), types.astype(np.int32)


class CoNSeP(FileDataset):
    """CoNSeP nuclei instance segmentation and classification (27 train / 14 test tiles)."""

    name = "consep"
    version = "1"
    description = (
        "CoNSeP colorectal nuclei (41 H&E tiles at 40x), instances + 7 types (merged to 4)"
    )
    provides = frozenset({"foreground", "instances", "classes"})
    splits = ("train", "test")
    train_split = "train"
    eval_splits = ("test",)
    class_names = MERGED
    license = (
        "Research use (Tissue Image Analytics Centre, University of Warwick); see the dataset page"
    )
    citation = (
        "S. Graham et al., HoVer-Net: Simultaneous segmentation and classification of nuclei in "
        "multi-tissue histology images. Medical Image Analysis 58:101563, 2019."
    )
    primary_metrics = ("pq", "aji", "dice")
    homepage = "https://warwick.ac.uk/fac/cross_fac/tia/data/hovernet/"
    download_help = (
        "Download consep_dataset.zip from https://warwick.ac.uk/fac/cross_fac/tia/data/hovernet/ "
        "and unzip it here (giving CoNSeP/Train and CoNSeP/Test)."
    )

    def __init__(self, root: Path | None = None, merge_classes: bool = True) -> None:
        self.root = root
        self.merge_classes = merge_classes
        if not merge_classes:
            self.class_names = TYPES  # type: ignore[misc]

    @cached_property
    def folder(self) -> Path:
        found = find_layout(self.directory, "Train") if self.directory.is_dir() else None
        if found is None:
            raise self.missing("CoNSeP/Train and CoNSeP/Test", self.directory)
        return found

    def _split_dir(self, split: str) -> Path:
        self._check_split(split)
        path = self.folder / FOLDERS[split]
        if not (path / "Images").is_dir():
            raise self.missing(f"{FOLDERS[split]}/Images", path / "Images")
        return path

    def sample_ids(self, split: str) -> list[str]:
        return natural_sorted(p.stem for p in (self._split_dir(split) / "Images").glob("*.png"))

    def load(self, split: str, sample_id: str) -> Sample:
        folder = self._split_dir(split)
        image_path = folder / "Images" / f"{sample_id}.png"
        label_path = folder / "Labels" / f"{sample_id}.mat"
        if not label_path.is_file() and (folder / "Labels" / f"{sample_id}.npy").is_file():
            label_path = label_path.with_suffix(".npy")
        if not label_path.is_file():
            raise DataError(
                f"{self.name}: missing annotation for {image_path}: expected {label_path}. {self.fix()}"
            )
        image = read_rgb(image_path, self.name, self.fix())
        instances, types = read_label_file(label_path, self.name)
        check_same_shape(image, instances, label_path, self.name, self.fix())
        classes = MERGE[types] if self.merge_classes else types
        meta = {
            "split": split,
            "source": str(image_path.relative_to(self.directory)),
            "spacing": (1.0, 1.0),
            "microns_per_pixel": 0.25,
        }
        return Sample(id=sample_id, image=image, instances=instances, classes=classes, meta=meta)

    def check_layout(self) -> list[str]:
        problems = []
        for split, expected in RELEASE.items():
            ids = self.sample_ids(split)
            if len(ids) != expected:
                problems.append(f"{len(ids)} {split} tiles; the release has {expected}")
            labels = self._split_dir(split) / "Labels"
            problems += [
                f"missing {labels / i}.mat"
                for i in ids
                if not (labels / f"{i}.mat").is_file() and not (labels / f"{i}.npy").is_file()
            ]
        return problems


@hookimpl
def bench_register_datasets(register):  # type: ignore[no-untyped-def]
    register(CoNSeP)
