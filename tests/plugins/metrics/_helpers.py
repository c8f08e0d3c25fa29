"""Tiny label images drawn box by box, and ImagePairs around them."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from harness import ImagePair, Prediction, Sample


def boxes(shape: tuple[int, int], *items: tuple[int, int, int, int, int]) -> np.ndarray:
    """An int32 label image with each (id, row0, row1, col0, col1) box painted in order."""
    out = np.zeros(shape, dtype=np.int32)
    for label, r0, r1, c0, c1 in items:
        out[r0:r1, c0:c1] = label
    return out


def make_pair(
    prediction: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    *,
    pred_classes: np.ndarray | None = None,
    ref_classes: np.ndarray | None = None,
    ignore: np.ndarray | None = None,
    meta: dict | None = None,
    **extra: object,
) -> ImagePair:
    shape = (reference if reference is not None else ref_classes).shape  # type: ignore[union-attr]
    sample = Sample(
        id="s",
        image=np.zeros((*shape, 3), np.uint8),
        instances=reference,
        classes=ref_classes,
        ignore=ignore,
        meta=meta or {},
    )
    return ImagePair(Prediction(instances=prediction, classes=pred_classes, **extra), sample)


def realistic_pair(
    seed: int, shape: tuple[int, int] = (128, 128), n_objects: int = 25
) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, reference): nuclei-like ellipses from the synthetic dataset's renderer and
    a prediction that shifts, grows, shrinks, drops, splits and invents objects, with
    non-contiguous ids above 255."""
    from plugins.datasets.synthetic import render

    rng = np.random.default_rng(seed)
    _, ref, _ = render(rng, shape[0], shape[1], n_objects, (4.0, 11.0), "fluorescence")
    pred = np.roll(ref, tuple(rng.integers(-1, 2, size=2)), axis=(0, 1))
    next_id = int(pred.max()) + 1
    for label in range(1, int(ref.max()) + 1):
        mask = pred == label
        roll = rng.random()
        if roll < 0.1:
            pred[mask] = 0
        elif roll < 0.25:
            pred[mask & ~ndi.binary_erosion(mask)] = 0
        elif roll < 0.4:
            pred[ndi.binary_dilation(mask) & (pred == 0)] = label
        elif roll < 0.5 and mask.any():
            cols = np.nonzero(mask)[1]
            pred[mask & (np.arange(shape[1])[None, :] > np.median(cols))] = next_id
            next_id += 1
    for _ in range(int(rng.integers(0, 4))):
        r, c = rng.integers(0, shape[0] - 5), rng.integers(0, shape[1] - 5)
        window = pred[r : r + 5, c : c + 5]
        window[window == 0] = next_id
        next_id += 1
    ids = np.unique(pred[pred > 0])
    lut = np.zeros(int(pred.max()) + 1, dtype=np.int32)
    lut[ids] = rng.permutation(ids.size).astype(np.int32) * 37 + 300
    return lut[pred], ref


def perturb(ref: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible prediction: shifted, some objects dropped, eroded, grown or split."""
    pred = np.roll(ref, tuple(rng.integers(-2, 3, size=2)), axis=(0, 1))
    slices = ndi.find_objects(pred)
    next_id = int(ref.max()) + 1
    for label, window in enumerate(slices, start=1):
        if window is None:
            continue
        grown = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in window)
        sub = pred[grown]
        mask = sub == label
        roll = rng.random()
        if roll < 0.08:
            sub[mask] = 0
        elif roll < 0.25:
            sub[mask & ~ndi.binary_erosion(mask)] = 0
        elif roll < 0.4:
            sub[ndi.binary_dilation(mask) & (sub == 0)] = label
        elif roll < 0.47:
            cols = np.nonzero(mask)[1]
            sub[mask & (np.arange(sub.shape[1])[None, :] > np.median(cols))] = next_id
            next_id += 1
    return pred
