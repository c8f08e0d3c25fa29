"""Shared core of the object metrics: the overlap (contingency) table of two label images.

The table is computed once per image pair with a single histogram over combined ids
and cached in :class:`harness.ImagePair` so every object metric (GlaS partners, IoU matching,
AJI, PQ, Hungarian assignment) reuses it.  Ids need not be contiguous, may exceed 255 (any
non-negative int32) and one id may cover several disconnected pieces (it is still ONE object).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from harness import ImagePair
from plugins.metrics.pixel import paired_arrays

#: Largest number of id combinations counted by OpenCV's histogram (see :func:`pair_counts`).
HIST_BINS = 1024


def check_labels(prediction: Any, reference: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both label images as integer arrays of one 2-D shape; a clear error otherwise."""
    p, r = paired_arrays(prediction, reference)
    for name, a in (("prediction", p), ("reference", r)):
        if a.ndim != 2:
            raise ValueError(f"{name} must be a 2-D label image, got shape {a.shape}")
        if a.dtype == bool:
            continue
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name} must hold integer ids, got dtype {a.dtype}")
        if a.size and a.min() < 0:
            raise ValueError(f"{name} holds negative ids; ids must be >= 0 (0 = background)")
    return p, r


def compact(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(compact image with ids 1..n (:func:`compact_dtype`), original ids sorted ascending,
    areas) of a label image."""
    flat = labels.ravel()
    top = int(flat.max()) if flat.size else 0
    if top <= 4 * flat.size + 1024:
        counts = np.bincount(flat.astype(np.intp, copy=False), minlength=top + 1)
        ids = np.flatnonzero(counts[1:]) + 1
        return relabel(labels, ids), ids, counts[ids].astype(np.int64)
    uniq, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    image = inverse.reshape(labels.shape)
    if uniq[0] != 0:  # no background: shift so that compact ids start at 1
        return (image + 1).astype(compact_dtype(uniq.size)), uniq, counts.astype(np.int64)
    return image.astype(compact_dtype(uniq.size - 1)), uniq[1:], counts[1:].astype(np.int64)


@dataclass
class OverlapTable:
    """Pixel overlaps between every reference object (rows) and predicted object (columns).

    ``ref_ids`` / ``pred_ids`` are the original ids (ascending), ``ref_areas`` / ``pred_areas``
    their pixel counts, ``intersection[i, j]`` = |G_i ∩ S_j|.  ``ref_labels`` /
    ``pred_labels`` are the label images holding those ids; ``ref_image`` / ``pred_image``
    (built on first use) hold compact ids (row/column index + 1; 0 = background) for
    windowed distance work.
    """

    ref_ids: np.ndarray
    pred_ids: np.ndarray
    ref_areas: np.ndarray
    pred_areas: np.ndarray
    intersection: np.ndarray
    ref_labels: np.ndarray
    pred_labels: np.ndarray
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ref_image(self) -> np.ndarray:
        if "image_ref" not in self._memo:
            self._memo["image_ref"] = relabel(self.ref_labels, self.ref_ids)
        return self._memo["image_ref"]  # type: ignore[no-any-return]

    @property
    def pred_image(self) -> np.ndarray:
        if "image_pred" not in self._memo:
            self._memo["image_pred"] = relabel(self.pred_labels, self.pred_ids)
        return self._memo["image_pred"]  # type: ignore[no-any-return]

    @property
    def n_ref(self) -> int:
        return int(self.ref_ids.size)

    @property
    def n_pred(self) -> int:
        return int(self.pred_ids.size)

    @property
    def union(self) -> np.ndarray:
        """|G_i ∪ S_j| for every pair (int64)."""
        if "union" not in self._memo:
            self._memo["union"] = (
                self.ref_areas[:, None] + self.pred_areas[None, :] - self.intersection
            )
        return self._memo["union"]  # type: ignore[no-any-return]

    @property
    def iou(self) -> np.ndarray:
        """IoU matrix (float64, 0 where objects do not overlap)."""
        if "iou" not in self._memo:
            self._memo["iou"] = self.intersection / np.maximum(self.union, 1)
        return self._memo["iou"]  # type: ignore[no-any-return]

    def pairs_above(self, numerator: int, denominator: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) of pairs with IoU > numerator/denominator, compared exactly in integers.

        For thresholds >= 1/2 each object is in at most one such pair (the matching is unique).
        """
        inter = self.intersection
        mask = (inter * denominator > numerator * self.union) & (inter > 0)
        rows, cols = np.nonzero(mask)
        return rows, cols

    def bboxes(self, side: str) -> list[tuple[slice, slice]]:
        """Bounding boxes (slices) of every object of ``side`` ("ref" or "pred"), in index order."""
        key = f"bbox_{side}"
        if key not in self._memo:
            image = self.ref_image if side == "ref" else self.pred_image
            self._memo[key] = bounding_boxes(image, self.n_ref if side == "ref" else self.n_pred)
        return self._memo[key]  # type: ignore[no-any-return]


def bounding_boxes(image: np.ndarray, n: int) -> list[tuple[slice, slice]]:
    """Bounding boxes (as :func:`scipy.ndimage.find_objects` gives them) of the objects 1..n of
    a compact label image, every one of which is present.

    Up to 63 objects, each pixel becomes one bit of a 32- or 64-bit word (bit k = object k) and one
    OR along each axis tells which objects every row and column holds: about a third of
    ``find_objects``' time.  More objects go to ``find_objects``.
    """
    if n > 63 or image.size == 0:
        return ndi.find_objects(image, max_label=n)  # type: ignore[no-any-return]
    word = np.uint32 if n < 32 else np.uint64  # half the memory for up to 31 objects
    one = word(1)
    bits = np.left_shift(one, image.astype(np.uint8, copy=False), dtype=word)
    ids = np.arange(1, n + 1, dtype=word)
    spans = []
    for axis in (1, 0):  # rows (OR across columns), then columns
        present = ((np.bitwise_or.reduce(bits, axis=axis)[:, None] >> ids) & one).astype(bool)
        first = present.argmax(axis=0)
        stop = present.shape[0] - present[::-1].argmax(axis=0)
        spans.append([slice(a, b) for a, b in zip(first.tolist(), stop.tolist(), strict=True)])
    return list(zip(spans[0], spans[1], strict=True))


def compact_dtype(n: int) -> type[np.unsignedinteger[Any]] | type[np.signedinteger[Any]]:
    """The smallest integer type holding ids 0..n (compact images stay small in memory)."""
    return np.uint8 if n < 256 else np.uint16 if n < 65536 else np.int32


def relabel(labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Compact image (``ids[k]`` -> k + 1, 0 stays 0; :func:`compact_dtype`) of a label image
    whose objects are the sorted ``ids``."""
    dtype = compact_dtype(ids.size)
    top = int(ids[-1]) if ids.size else 0
    if top == ids.size:  # already 1..n
        return labels.astype(dtype, copy=False)
    if top < 256:  # one table lookup per pixel (OpenCV's LUT is ~5x numpy's gather)
        import cv2  # imported where used (as below), so building the registry skips OpenCV

        lut = np.zeros(256, dtype=np.uint8)
        lut[ids] = np.arange(1, ids.size + 1)
        return cv2.LUT(labels.astype(np.uint8), lut)  # type: ignore[no-any-return]
    lut = np.zeros(top + 1, dtype=dtype)
    lut[ids] = np.arange(1, ids.size + 1)
    return lut[labels]  # type: ignore[no-any-return]


def pair_counts(
    reference: np.ndarray, prediction: np.ndarray, top_r: int, top_p: int
) -> np.ndarray:
    """Pixel count (int64) of every (reference id, prediction id) combination, as a
    (top_r + 1) x (top_p + 1) table, from one histogram of combined ids.

    Combined ids below 65536 are formed in 16 bits; up to ``HIST_BINS`` of them go through
    OpenCV's histogram (~3x ``np.bincount`` on few objects; its float32 counts are exact
    below 2**24 pixels, and its cost grows with the bins), the rest through ``bincount``.
    """
    bins = (top_r + 1) * (top_p + 1)
    narrow = bins <= 65536 and reference.size < 1 << 24
    key: np.ndarray[Any, Any] = reference.astype(np.uint16 if narrow else np.intp)
    key *= top_p + 1
    np.add(key, prediction, out=key, casting="unsafe")  # key < bins: no overflow, no sign change
    if narrow and bins <= HIST_BINS and key.size:
        import cv2

        counts = cv2.calcHist([key], [0], None, [bins], [0, bins]).ravel().astype(np.int64)
    else:
        counts = np.bincount(key.ravel(), minlength=bins)
    return counts.reshape(top_r + 1, top_p + 1)


def overlap_table(*, prediction: np.ndarray, reference: np.ndarray) -> OverlapTable:
    """Build the overlap table of two instance label images (one histogram of combined ids).

    Small id ranges are combined as they are (areas are the table's margins); otherwise ids
    are first made compact.
    """
    p, r = check_labels(prediction, reference)
    top_r = int(r.max()) if r.size else 0
    top_p = int(p.max()) if p.size else 0
    if (top_r + 1) * (top_p + 1) <= 4 * r.size + 4096:
        full = pair_counts(r, p, top_r, top_p)
        ref_counts, pred_counts = full.sum(axis=1), full.sum(axis=0)
        r_ids = np.flatnonzero(ref_counts[1:]) + 1
        p_ids = np.flatnonzero(pred_counts[1:]) + 1
        return OverlapTable(
            ref_ids=r_ids,
            pred_ids=p_ids,
            ref_areas=ref_counts[r_ids].astype(np.int64),
            pred_areas=pred_counts[p_ids].astype(np.int64),
            intersection=full[np.ix_(r_ids, p_ids)].astype(np.int64),
            ref_labels=r,
            pred_labels=p,
        )
    r_img, r_ids, r_areas = compact(r)
    p_img, p_ids, p_areas = compact(p)
    n_r, n_p = r_ids.size, p_ids.size
    full = pair_counts(r_img, p_img, n_r, n_p)
    table = OverlapTable(
        ref_ids=r_ids,
        pred_ids=p_ids,
        ref_areas=r_areas,
        pred_areas=p_areas,
        intersection=full[1:, 1:].astype(np.int64),
        ref_labels=r,
        pred_labels=p,
    )
    table._memo.update(image_ref=r_img, image_pred=p_img)
    return table


def partners(intersection: np.ndarray, axis: int) -> np.ndarray:
    """GlaS partner index of every object along ``axis`` (most shared pixels, tie -> smallest id);
    -1 where the object overlaps nothing.  axis=1: partner of each reference (row) object."""
    if intersection.shape[axis] == 0:
        return np.full(intersection.shape[1 - axis], -1, dtype=np.intp)
    best = np.argmax(intersection, axis=axis)
    top = np.take_along_axis(intersection, np.expand_dims(best, axis), axis=axis).squeeze(axis)
    return np.where(top > 0, best, -1)


def hungarian(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one assignment maximising the summed ``weights``, keeping only positive pairs."""
    if weights.size == 0:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty
    from scipy.optimize import linear_sum_assignment  # scipy.optimize: ~0.2 s, skipped by the registry

    rows, cols = linear_sum_assignment(weights, maximize=True)
    keep = weights[rows, cols] > 0
    return rows[keep], cols[keep]


def require_images(stats: Sequence[object]) -> None:
    """Reducers refuse an empty split rather than invent a value for it."""
    if not stats:
        raise ValueError("cannot reduce a split with no images")


def ratio(numerator: float, denominator: float, *, empty: float) -> float:
    """numerator/denominator, or ``empty`` when the denominator is zero (never NaN)."""
    return float(numerator) / float(denominator) if denominator else float(empty)


# ---- adapters from (Prediction, Sample) pairs ---------------------------------------------


def instance_labels(pair: ImagePair) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and reference instance maps with ignored pixels set to background."""

    def compute() -> tuple[np.ndarray, np.ndarray]:
        pred = pair.prediction.instances
        ref = pair.reference.instances
        if pred is None or ref is None:
            raise ValueError(
                f"sample {pair.reference.id!r}: instance metrics need instance maps on both "
                "sides (check the metric's requires / reference_requires)"
            )
        pred, ref = check_labels(pred, ref)
        if pair.reference.ignore is not None:
            keep = ~np.asarray(pair.reference.ignore, dtype=bool)
            pred = np.where(keep, pred, 0)
            ref = np.where(keep, ref, 0)
        return pred, ref

    return pair.cached("matching.instances", compute)  # type: ignore[no-any-return]


def instance_table(pair: ImagePair) -> OverlapTable:
    """The cached overlap table of the pair's instance maps."""

    def compute() -> OverlapTable:
        pred, ref = instance_labels(pair)
        return overlap_table(prediction=pred, reference=ref)

    return pair.cached("matching.table", compute)  # type: ignore[no-any-return]
