"""Shared fixtures of the method tests, and a tiny two-class nuclei dataset for the
supervised, class-aware methods.

Class 1 ("tumour", the positive class) nuclei are large (radius 9–12 px) and speckled with
dark dots; class 2 ("normal") nuclei are small (radius 4–6 px) and smooth.  Images are
brightfield-style, deterministic in (seed, split, index).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy import ndimage as ndi

from harness import Dataset, Method, Sample
from plugins.datasets.synthetic import Synthetic
from plugins.metrics.pixel import dice


class TwoClassNuclei(Dataset):
    name = "two_class_nuclei"
    provides = frozenset({"foreground", "instances", "classes"})
    splits = ("train", "test")
    class_names = ("background", "tumour", "normal")

    def __init__(self, n_train: int = 4, n_test: int = 3, size: int = 128, seed: int = 0) -> None:
        self.n_train = n_train
        self.n_test = n_test
        self.size = size
        self.seed = seed

    def sample_ids(self, split: str) -> list[str]:
        self._check_split(split)
        n = self.n_train if split == "train" else self.n_test
        return [f"{split}_{i}" for i in range(n)]

    def load(self, split: str, sample_id: str) -> Sample:
        index = int(sample_id.rsplit("_", 1)[1])
        rng = np.random.default_rng([self.seed, self.splits.index(split), index])
        n = self.size
        yy, xx = np.mgrid[0:n, 0:n]
        instances = np.zeros((n, n), np.int32)
        classes = np.zeros((n, n), np.int32)
        next_id = 1
        for _ in range(400):
            if next_id > 14:
                break
            cls = 1 + next_id % 2
            radius = rng.uniform(9, 12) if cls == 1 else rng.uniform(4, 6)
            cy, cx = rng.uniform(radius, n - radius, size=2)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
            if instances[ndi.binary_dilation(disc, iterations=3)].any():
                continue
            instances[disc] = next_id
            classes[disc] = cls
            next_id += 1
        grey = np.full((n, n), 225.0)
        grey[classes == 2] = 90.0
        speckle = rng.random((n, n)) < 0.25
        grey[classes == 1] = np.where(speckle[classes == 1], 40.0, 150.0)
        grey = ndi.gaussian_filter(grey, 0.7) + rng.normal(0, 4, (n, n))
        tint = np.array([1.0, 0.85, 1.0])
        image = np.clip(grey[..., None] * tint, 0, 255).astype(np.uint8)
        return Sample(
            id=sample_id,
            image=image,
            instances=instances,
            classes=classes,
            meta={"positive_classes": (1,), "patient": f"p{index % 2}"},
        )


@pytest.fixture(scope="session")
def two_class() -> TwoClassNuclei:
    return TwoClassNuclei()


@pytest.fixture(scope="session")
def synthetic_bf() -> tuple[list[Sample], list[Sample]]:
    """(train, test) samples of the synthetic dataset, brightfield style."""
    ds = Synthetic(n_train=4, n_test=3, style="brightfield")
    return list(ds.samples("train")), list(ds.samples("test"))


@pytest.fixture(scope="session")
def synthetic_fl() -> tuple[list[Sample], list[Sample]]:
    """(train, test) samples of the synthetic dataset, fluorescence style."""
    ds = Synthetic(n_train=4, n_test=3, style="fluorescence")
    return list(ds.samples("train")), list(ds.samples("test"))


def _mean_dice(method: Method, samples: list[Sample]) -> float:
    preds = [method.predict(s.image).foreground for s in samples]
    return float(np.mean([dice(prediction=p, reference=s.instances) for p, s in zip(preds, samples, strict=True)]))


@pytest.fixture(scope="session")
def mean_dice() -> Callable[[Method, list[Sample]], float]:
    """Mean pixel Dice (plugins.metrics.pixel.dice) of a method's foreground over samples."""
    return _mean_dice
