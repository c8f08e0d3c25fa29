"""Training patches: random crops and augmentation in numpy (no torch, no extra packages).

A :class:`Patch` is one training crop: the RGB image as float32 in [0, 1], its label map
(instance ids or classes; 0 = background) and a boolean ``valid`` mask (False where the crop
was padded or the sample marks pixels as ignored).  Geometry (flips, 90° rotations, a mild
affine) is applied identically to all three; colour jitter only touches the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi


@dataclass
class Patch:
    image: np.ndarray  # H×W×3 float32 in [0, 1]
    labels: np.ndarray  # H×W int64, 0 = background
    valid: np.ndarray  # H×W bool


@dataclass(frozen=True)
class Augment:
    """What augmentation to apply (all recorded as method parameters).

    ``flips`` (horizontal/vertical), ``rot90`` (quarter turns), ``affine`` (probability of a
    rotation up to ±15° and scaling by 0.9–1.1), ``colour`` (strength of the per-channel
    gain/offset, brightness/contrast and saturation jitter; 0 disables it).
    """

    flips: bool = True
    rot90: bool = True
    affine: float = 0.3
    colour: float = 0.1

    @classmethod
    def named(cls, name: str) -> Augment:
        presets = {
            "none": cls(False, False, 0.0, 0.0),
            "geometric": cls(colour=0.0),
            "default": cls(),
        }
        if name not in presets:
            raise ValueError(f"unknown augmentation {name!r}; choose from {', '.join(presets)}")
        return presets[name]


def random_crop(
    image: np.ndarray,
    labels: np.ndarray,
    valid: np.ndarray,
    size: int,
    rng: np.random.Generator,
) -> Patch:
    """A size×size crop at a random position; images smaller than ``size`` are padded
    (reflected for the image, background and invalid for the targets)."""
    h, w = labels.shape
    pad_h, pad_w = max(size - h, 0), max(size - w, 0)
    if pad_h or pad_w:
        widths = ((0, pad_h), (0, pad_w))
        image = np.pad(image, (*widths, (0, 0)), mode="reflect" if min(h, w) > 1 else "edge")
        labels = np.pad(labels, widths)
        valid = np.pad(valid, widths)
        h, w = labels.shape
    top = int(rng.integers(0, h - size + 1))
    left = int(rng.integers(0, w - size + 1))
    window = (slice(top, top + size), slice(left, left + size))
    return Patch(
        image=np.ascontiguousarray(image[window], dtype=np.float32),
        labels=np.ascontiguousarray(labels[window]),
        valid=np.ascontiguousarray(valid[window]),
    )


def _geometric(patch: Patch, params: Augment, rng: np.random.Generator) -> Patch:
    image, labels, valid = patch.image, patch.labels, patch.valid
    if params.flips:
        for axis in (0, 1):
            if rng.random() < 0.5:
                image, labels, valid = (np.flip(a, axis) for a in (image, labels, valid))
    if params.rot90:
        k = int(rng.integers(0, 4))
        image, labels, valid = (np.rot90(a, k, axes=(0, 1)) for a in (image, labels, valid))
    if params.affine > 0 and rng.random() < params.affine:
        angle = np.deg2rad(rng.uniform(-15.0, 15.0))
        scale = rng.uniform(0.9, 1.1)
        cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
        matrix = np.array([[cos, -sin], [sin, cos]])
        centre = (np.array(labels.shape, dtype=float) - 1) / 2
        offset = centre - matrix @ centre

        def warp(a: np.ndarray, order: int) -> np.ndarray:
            return ndi.affine_transform(a, matrix, offset=offset, order=order, mode="reflect")  # type: ignore[no-any-return]

        image = np.stack([warp(image[..., c], 1) for c in range(3)], axis=-1)
        labels = warp(labels, 0)
        valid = warp(valid.astype(np.uint8), 0).astype(bool)
    return Patch(
        image=np.ascontiguousarray(image, dtype=np.float32),
        labels=np.ascontiguousarray(labels),
        valid=np.ascontiguousarray(valid),
    )


def _colour(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Stain-like jitter: per-channel gain and offset, brightness/contrast, saturation."""
    gain = rng.uniform(1 - strength, 1 + strength, size=3)
    offset = rng.uniform(-strength / 2, strength / 2, size=3)
    out = image * gain + offset
    contrast = rng.uniform(1 - strength, 1 + strength)
    mean = out.mean()
    out = (out - mean) * contrast + mean
    gray = out.mean(axis=-1, keepdims=True)
    saturation = rng.uniform(1 - 2 * strength, 1 + 2 * strength)
    out = gray + (out - gray) * saturation
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def augment(patch: Patch, params: Augment, rng: np.random.Generator) -> Patch:
    """Geometry on image and targets alike, then colour jitter on the image."""
    patch = _geometric(patch, params, rng)
    if params.colour > 0:
        patch.image = _colour(patch.image, params.colour, rng)
    return patch
