"""dsb2018-sample: 20 real DSB2018 images embedded in the package, the default dataset.

See ``data/dsb2018_sample/PROVENANCE.md`` for the selection and conversion; the data is CC0.
"""

from __future__ import annotations

import csv
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image

from harness import DataError, Dataset, Sample, hookimpl

DATA = Path(__file__).parent / "data" / "dsb2018_sample"


class DSB2018Sample(Dataset):
    """Embedded real sample of the Data Science Bowl 2018 stage 1 training set."""

    name = "dsb2018-sample"
    version = "1"
    description = "20 real DSB2018 images (fluorescence + H&E), embedded; no download"
    provides = frozenset({"foreground", "instances"})
    splits = ("train", "test")
    train_split = "train"
    eval_splits = ("test",)
    class_names = ("background", "nucleus")
    license = "CC0-1.0 (BBBC038v1)"
    citation = (
        "Caicedo et al., Nucleus segmentation across imaging experiments: the 2018 Data Science "
        "Bowl. Nature Methods 16:1247-1253, 2019"
    )
    primary_metrics = ("dsb_map", "aji", "dice")

    def __init__(self, root: Path | None = None) -> None:
        self.root = root

    @property
    def directory(self) -> Path:
        return Path(self.root) if self.root is not None else DATA

    @cached_property
    def _manifest(self) -> list[dict[str, str]]:
        path = self.directory / "manifest.csv"
        if not path.is_file():
            raise DataError(
                f"dsb2018-sample: manifest {path} is missing; the embedded sample ships with the "
                "segbench package, so reinstall it (pip install --force-reinstall segbench)"
            )
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh))

    def sample_ids(self, split: str) -> list[str]:
        self._check_split(split)
        return [row["image_id"] for row in self._manifest if row["split"] == split]

    def load(self, split: str, sample_id: str) -> Sample:
        row = next((r for r in self._manifest if r["image_id"] == sample_id), None)
        if row is None or row["split"] != split:
            raise DataError(f"dsb2018-sample: no image {sample_id!r} in split {split!r}")
        image = _read(self.directory / "images" / f"{sample_id}.png")
        labels = _read(self.directory / "labels" / f"{sample_id}.png")
        if image.ndim != 3 or image.shape[2] != 3 or labels.shape != image.shape[:2]:
            raise DataError(
                f"dsb2018-sample: {sample_id}: image {image.shape} and labels {labels.shape} "
                "do not align (expected H×W×3 and H×W)"
            )
        return Sample(
            id=sample_id,
            image=image,
            instances=labels.astype(np.int32),
            meta={"type": row["type"], "source": f"stage1_train/{sample_id}"},
        )


def _read(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im)
    except (OSError, ValueError) as exc:
        raise DataError(f"dsb2018-sample: cannot read {path}: {exc}") from exc


@hookimpl
def bench_register_datasets(register):  # type: ignore[no-untyped-def]
    register(DSB2018Sample)
