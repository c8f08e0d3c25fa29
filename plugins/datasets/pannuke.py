"""PanNuke: 256×256 H&E patches of 19 tissues, 5 nucleus classes, in three folds of ``.npy``.

Layout of each official zip: ``Fold k/images/foldk/{images,types}.npy`` and
``Fold k/masks/foldk/masks.npy``.  ``images`` is (N,256,256,3) float64 in 0..255, ``masks``
(N,256,256,6) float64 (channels 0-4 instance maps of neoplastic, inflammatory, connective,
dead, epithelial nuclei; channel 5 background), ``types`` the tissue name of each patch.
Arrays are memory-mapped, so a patch is read only when loaded.

Instances: every (channel, id) pair with id > 0 becomes its own instance (the same id can occur
in two channels); where two class channels overlap, the lower channel wins.  ``classes`` is
channel + 1.  "Void" pixels (all six channels 0, e.g. the empty patches of the release) are
excluded from scoring through ``Sample.ignore``.

``rotation`` selects the standard 3-fold protocol: 1 = train fold 1, validation 2, test 3;
2 = train 2, validation 1, test 3; 3 = train 3, validation 2, test 1.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from harness import DataError, Sample, hookimpl
from harness.data import FileDataset

ROTATIONS = {1: (1, 2, 3), 2: (2, 1, 3), 3: (3, 2, 1)}
RELEASE = {1: 2656, 2: 2523, 3: 2722}  # patches per fold, as np.load reports them (7,901)
CLASSES = ("background", "neoplastic", "inflammatory", "connective", "dead", "epithelial")


def masks_to_maps(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(instances int32, classes int32, void bool) of one (H, W, 6) PanNuke mask."""
    height, width = masks.shape[:2]
    instances = np.zeros((height, width), dtype=np.int32)
    classes = np.zeros((height, width), dtype=np.int32)
    next_id = 1
    for channel in range(5):
        layer = np.rint(masks[..., channel]).astype(np.int64)
        free = classes == 0
        for value in np.unique(layer[layer > 0]):
            where = (layer == value) & free
            if where.any():
                instances[where] = next_id
                classes[where] = channel + 1
                next_id += 1
    void = (classes == 0) & (masks[..., 5] == 0)
    return instances, classes, void


class PanNuke(FileDataset):
    """PanNuke pan-cancer nuclei; the fold rotation is a parameter."""

    name = "pannuke"
    version = "1"
    description = "PanNuke 7,901 H&E patches (19 tissues, 5 nucleus classes), 3 official folds"
    provides = frozenset({"foreground", "instances", "classes"})
    splits = ("train", "validation", "test")
    train_split = "train"
    eval_splits = ("test",)
    class_names = CLASSES
    license = "CC BY-NC-SA 4.0"
    citation = (
        "J. Gamper et al., PanNuke: an open pan-cancer histology dataset for nuclei instance "
        "segmentation and classification. ECDP 2019, LNCS 11435:11-19. J. Gamper et al., "
        "PanNuke dataset extension, insights and baselines. arXiv:2003.10778, 2020."
    )
    primary_metrics = ("pq", "aji", "dice")
    homepage = "https://warwick.ac.uk/fac/cross_fac/tia/data/pannuke"
    download_help = (
        "Download fold_1.zip, fold_2.zip and fold_3.zip from "
        "https://warwick.ac.uk/fac/cross_fac/tia/data/pannuke and unzip them here "
        "(giving 'Fold 1/', 'Fold 2/', 'Fold 3/')."
    )

    def __init__(self, root: Path | None = None, rotation: int = 1) -> None:
        if rotation not in ROTATIONS:
            raise ValueError(f"rotation must be 1, 2 or 3; got {rotation!r}")
        self.root = root
        self.rotation = rotation

    def fold_of(self, split: str) -> int:
        self._check_split(split)
        return ROTATIONS[self.rotation][self.splits.index(split)]

    def _file(self, fold: int, kind: str, name: str) -> Path:
        path = self.directory / f"Fold {fold}" / kind / f"fold{fold}" / name
        if not path.is_file():
            raise self.missing(f"fold {fold} {name}", path)
        return path

    def _array(self, fold: int, kind: str, name: str) -> np.ndarray:
        path = self._file(fold, kind, name)
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(
                f"{self.name}: cannot read {path} ({exc}); expected a .npy array. {self.fix()}"
            ) from exc

    @cached_property
    def _folds(self) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        return {}

    def fold(self, fold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(images, masks, types) of one fold, memory-mapped and shape-checked."""
        if fold not in self._folds:
            images = self._array(fold, "images", "images.npy")
            masks = self._array(fold, "masks", "masks.npy")
            types = self._array(fold, "images", "types.npy")
            n = images.shape[0]
            expected = {
                ("images", "images.npy"): (
                    images,
                    "(N, H, W, 3)",
                    images.ndim == 4 and images.shape[3] == 3,
                ),
                ("masks", "masks.npy"): (
                    masks,
                    str(images.shape[:3] + (6,)),
                    masks.shape == images.shape[:3] + (6,),
                ),
                ("images", "types.npy"): (types, f"({n},)", types.shape == (n,)),
            }
            for (kind, name), (array, shape, ok) in expected.items():
                if not ok:
                    path = self._file(fold, kind, name)
                    raise DataError(
                        f"{self.name}: {path} has shape {array.shape}; expected {shape} "
                        "(the arrays of one fold must agree)"
                    )
            self._folds[fold] = (images, masks, types)
        return self._folds[fold]

    def sample_ids(self, split: str) -> list[str]:
        fold = self.fold_of(split)
        return [f"fold{fold}_{i:04d}" for i in range(self.fold(fold)[0].shape[0])]

    def load(self, split: str, sample_id: str) -> Sample:
        fold = self.fold_of(split)
        images, masks, types = self.fold(fold)
        prefix, _, index_text = sample_id.partition("_")
        if (
            prefix != f"fold{fold}"
            or not index_text.isdigit()
            or int(index_text) >= images.shape[0]
        ):
            raise DataError(f"{self.name}: no patch {sample_id!r} in split {split!r} (fold {fold})")
        index = int(index_text)
        image = np.clip(np.rint(np.asarray(images[index])), 0, 255).astype(np.uint8)
        instances, classes, void = masks_to_maps(np.asarray(masks[index]))
        meta = {
            "split": split,
            "fold": fold,
            "index": index,
            "tissue": str(types[index]),
            "spacing": (1.0, 1.0),
        }
        return Sample(
            id=sample_id,
            image=image,
            instances=instances,
            classes=classes,
            meta=meta,
            ignore=void if void.any() else None,
        )

    def check_layout(self) -> list[str]:
        problems = []
        for fold, expected in RELEASE.items():
            try:
                found = self.fold(fold)[0].shape[0]
            except DataError as exc:
                problems.append(str(exc))
                continue
            if found != expected:
                problems.append(f"fold {fold} has {found} patches; the release has {expected}")
        return problems


@hookimpl
def bench_register_datasets(register):  # type: ignore[no-untyped-def]
    register(PanNuke)
