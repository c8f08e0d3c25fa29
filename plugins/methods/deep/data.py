"""Samples held in memory for training, and the seeded draw of augmented patches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from harness import Sample
from plugins.methods.deep.augment import Augment, Patch, augment, random_crop

Target = Literal["foreground", "classes", "instances", "rim"]


def sample_target(sample: Sample, target: Target) -> np.ndarray:
    """The label map a model learns from: foreground (0/1), class map, or instance ids
    (``rim``: the instance ids, encoded after resizing by :meth:`TrainingSet.from_samples`)."""
    if target == "classes":
        if sample.classes is None:
            raise ValueError(f"sample {sample.id!r} has no class map; use head='binary'")
        return np.asarray(sample.classes, dtype=np.int64)
    if target in ("instances", "rim"):
        if sample.instances is None:
            raise ValueError(
                f"sample {sample.id!r} has no instance map; an instance model needs one"
            )
        return np.asarray(sample.instances, dtype=np.int64)
    return sample.foreground.astype(np.int64)


def check_image(image: np.ndarray, where: str) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] < 3:
        raise ValueError(f"{where}: expected an H×W×3 RGB image, got shape {array.shape}")
    return array[..., :3]


@dataclass
class TrainingSet:
    """Images as float32 in [0, 1] with their label maps and valid-pixel masks."""

    images: list[np.ndarray]
    labels: list[np.ndarray]
    valid: list[np.ndarray]

    @classmethod
    def from_samples(
        cls, samples: Sequence[Sample], target: Target, scale: float = 1.0, rim: int = 2
    ) -> TrainingSet:
        """Images and targets resized by ``scale`` (area for images, nearest for label maps);
        ``target="rim"`` encodes the resized instance map as background/interior/rim."""
        from plugins.methods.deep.recipe import resize, rim_encoding, scaled_shape

        if not samples:
            raise ValueError("no training samples: the dataset's training split is empty")
        images, labels, valid = [], [], []
        for sample in samples:
            image = check_image(sample.image, f"sample {sample.id!r}")
            size = scaled_shape(image.shape, scale)
            images.append(resize(image.astype(np.float32) / 255.0, size, nearest=False))
            label = resize(sample_target(sample, target), size, nearest=True)
            labels.append(rim_encoding(label, rim) if target == "rim" else label)
            ok = np.ones(image.shape[:2], dtype=bool)
            if sample.ignore is not None:
                ok &= ~np.asarray(sample.ignore, dtype=bool)
            valid.append(resize(ok, size, nearest=True))
        return cls(images, labels, valid)

    def __len__(self) -> int:
        return len(self.images)

    def draw(
        self, rng: np.random.Generator, batch_size: int, patch_size: int, params: Augment
    ) -> list[Patch]:
        """``batch_size`` augmented patches from images drawn uniformly at random."""
        patches = []
        for index in rng.integers(0, len(self), size=batch_size):
            crop = random_crop(
                self.images[index], self.labels[index], self.valid[index], patch_size, rng
            )
            patches.append(augment(crop, params, rng))
        return patches


#: Fewest images held out of training for validation (when training has twice as many).
MIN_HELD_OUT = 16


def split_validation(
    train: Sequence[Sample], validation: Sequence[Sample], seed: int, fraction: float = 0.1,
    minimum: int = MIN_HELD_OUT,
) -> tuple[list[Sample], list[Sample]]:
    """Use the given validation samples; without any, hold out a seeded ``fraction`` of train,
    but at least ``minimum`` images when train has twice that many (at least one image, and
    none when train has a single image: it then validates on train).

    The minimum is for the choices made on the held-out part (checkpoint, decoding).  GlaS's
    85 training images gave 8 at 10%.  With the same network, the decoding chosen on those 8
    from a wider grid moved Part B's object F1 by -0.037 (leaderboards v4 to v5)."""
    train = list(train)
    if validation:
        return train, list(validation)
    if len(train) < 2:
        return train, train
    n_val = max(1, round(fraction * len(train)))
    if len(train) >= 2 * minimum:
        n_val = max(n_val, minimum)
    order = np.random.default_rng(seed).permutation(len(train))
    held = set(order[:n_val].tolist())
    return [s for i, s in enumerate(train) if i not in held], [train[i] for i in sorted(held)]
