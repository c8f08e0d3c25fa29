"""Procedurally generated nuclei-like images with exact instance labels, for tests and demos.

Each image has elliptical "nuclei" (non-overlapping; they may touch) on a textured
background, rendered in brightfield (dark purple nuclei on pink, like H&E) or fluorescence
(bright nuclei on black) style, with blur and noise.  Everything is a pure function of
(``seed``, split, index), so any image can be regenerated alone.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np
from scipy import ndimage as ndi

from harness import Dataset, Sample, hookimpl

_STYLES = ("brightfield", "fluorescence")


def _rng(seed: int, split: str, index: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}:{split}:{index}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def render(
    rng: np.random.Generator,
    height: int,
    width: int,
    n_objects: int,
    radius: tuple[float, float],
    style: str,
    touching: bool = True,
    n_classes: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (RGB uint8 image, int32 instance map, int32 class map) with up to ``n_objects``
    ellipses; with ``n_classes`` > 0 each object gets a class 1..n_classes that shifts its
    colour and size (the class map is all zeros otherwise)."""
    instances = np.zeros((height, width), dtype=np.int32)
    object_class = np.zeros(n_objects + 1, dtype=np.int32)
    yy, xx = np.mgrid[0:height, 0:width]
    next_id = 1
    for _ in range(n_objects * 20):
        if next_id > n_objects:
            break
        cls = int(rng.integers(1, n_classes + 1)) if n_classes else 0
        a = rng.uniform(*radius) * (1.0 + 0.25 * max(cls - 1, 0))
        b = a * rng.uniform(0.6, 1.0)
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        theta = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = dx * np.cos(theta) + dy * np.sin(theta)
        v = -dx * np.sin(theta) + dy * np.cos(theta)
        mask = (u / a) ** 2 + (v / b) ** 2 <= 1.0
        if not mask.any() or (instances[mask] > 0).any():
            continue
        if not touching and (instances[ndi.binary_dilation(mask, iterations=2)] > 0).any():
            continue
        instances[mask] = next_id
        object_class[next_id] = cls
        next_id += 1

    fg = instances > 0
    texture = ndi.gaussian_filter(rng.normal(0.0, 1.0, (height, width)), 3.0)
    texture /= max(float(np.abs(texture).max()), 1e-6)
    if style == "brightfield":
        background = np.array([236.0, 200.0, 222.0])
        nucleus = np.array([95.0, 60.0, 140.0])
    else:
        background = np.array([12.0, 12.0, 12.0])
        nucleus = np.array([200.0, 200.0, 200.0])
    shade = rng.uniform(0.85, 1.15, size=n_objects + 1)
    shade = (shade * (1.0 - 0.3 * np.maximum(object_class - 1, 0) / max(n_classes, 1)))[instances]
    colour = np.where(fg[..., None], nucleus * shade[..., None], background)
    colour = colour + 12.0 * texture[..., None]
    colour = ndi.gaussian_filter(colour, sigma=(1.0, 1.0, 0))
    colour = colour + rng.normal(0.0, 6.0, colour.shape)
    if style == "fluorescence":
        colour = np.repeat(colour.mean(axis=2, keepdims=True), 3, axis=2)
    image = np.clip(np.rint(colour), 0, 255).astype(np.uint8)
    return image, instances, object_class[instances]


class Synthetic(Dataset):
    """Seeded synthetic nuclei; sizes, counts, style and number of classes are parameters."""

    name = "synthetic"
    version = "1"
    description = "Procedural nuclei-like images with exact instance labels (tests, demos)"
    provides = frozenset({"foreground", "instances"})
    splits = ("train", "validation", "test")
    train_split = "train"
    eval_splits = ("test",)
    class_names: tuple[str, ...] = ("background", "nucleus")
    license = "CC0-1.0 (generated)"
    citation = "segbench synthetic nuclei generator"
    primary_metrics = ("dice", "iou")

    def __init__(
        self,
        n_train: int = 8,
        n_validation: int = 2,
        n_test: int = 4,
        height: int = 96,
        width: int = 96,
        n_objects: int = 12,
        radius_min: float = 4.0,
        radius_max: float = 9.0,
        style: Literal["brightfield", "fluorescence", "mixed"] = "brightfield",
        touching: bool = True,
        n_classes: int = 0,
        seed: int = 0,
    ) -> None:
        if style not in (*_STYLES, "mixed"):
            raise ValueError(f"style must be one of brightfield, fluorescence, mixed; got {style!r}")
        self.n_train = n_train
        self.n_validation = n_validation
        self.n_test = n_test
        self.height = height
        self.width = width
        self.n_objects = n_objects
        self.radius_min = radius_min
        self.radius_max = radius_max
        self.style = style
        self.touching = touching
        self.n_classes = n_classes
        self.seed = seed
        if n_classes:
            self.provides = frozenset({"foreground", "instances", "classes"})
            self.class_names = ("background", *[f"class_{i}" for i in range(1, n_classes + 1)])

    def sample_ids(self, split: str) -> list[str]:
        self._check_split(split)
        n = {"train": self.n_train, "validation": self.n_validation, "test": self.n_test}[split]
        return [f"{split}_{i:04d}" for i in range(n)]

    def load(self, split: str, sample_id: str) -> Sample:
        self._check_split(split)
        index = int(sample_id.rsplit("_", 1)[1])
        rng = _rng(self.seed, split, index)
        style = self.style if self.style != "mixed" else _STYLES[index % 2]
        image, instances, classes = render(
            rng,
            self.height,
            self.width,
            self.n_objects,
            (self.radius_min, self.radius_max),
            style,
            self.touching,
            self.n_classes,
        )
        meta = {"style": style, "split": split, "index": index}
        if self.n_classes:
            meta["positive_classes"] = (1,)
        return Sample(
            id=sample_id,
            image=image,
            instances=instances,
            classes=classes if self.n_classes else None,
            meta=meta,
        )


@hookimpl
def bench_register_datasets(register):  # type: ignore[no-untyped-def]
    register(Synthetic)
