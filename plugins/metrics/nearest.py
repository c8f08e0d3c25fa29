"""Exact nearest-pixel distances between two pixel sets of one window (the distance core of
the boundary metrics and the GlaS object Hausdorff).

Squared Euclidean distances in pixels are integers, so they are computed exactly in integer
arithmetic, by whichever of three exact routes is cheapest for the query:

1. offsets: every query pixel outside the target looks at the target pixels at the few
   offsets with squared length <= ``OFFSET_REACH`` in increasing order of length; the first
   hit is its distance (most boundary pixels of a fair prediction are resolved here);
2. tree: the rest ask a k-d tree built on the target's 4-boundary (the nearest target
   pixel of an outside pixel always lies on that boundary: a target pixel whose four
   neighbours are all in the target has a neighbour one step closer to the query);
3. transform: when the query pixels are many compared with the window, one exact distance
   transform of the window (OpenCV's Felzenszwalb transform, or scipy's for huge windows)
   is cheaper than either.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

#: Largest squared offset length tried directly before the k-d tree takes over.
OFFSET_REACH = 128
#: Upper squared lengths of the bands of offsets tried together (nearest band first; the
#: first band must hold a single length).
OFFSET_BANDS = (1, 2, 5, 10, 18, 32, 64, 128)
#: A window transform (~20 ns a pixel) beats per-pixel queries (~0.5 µs in the tree, ~0.1 µs
#: through the offsets) once the query pixels exceed these fractions of the window.
TRANSFORM_SHARE = 0.04
TREE_SHARE = 0.01
#: Query pixels gathered at once through the offsets (bounds the temporary memory).
CHUNK = 4096


def boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (the image border counts as outside)."""
    m = np.asarray(mask, dtype=bool)
    inner = np.zeros_like(m)
    if m.shape[0] > 2 and m.shape[1] > 2:
        c = m[1:-1, 1:-1]
        inner[1:-1, 1:-1] = c & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    return m & ~inner


def transform_squared(target: np.ndarray, at_flat: np.ndarray) -> np.ndarray:
    """Exact squared distance (int64, pixels) to ``target`` of the window pixels with flat
    indices ``at_flat``, from one distance transform of the window.

    OpenCV's float32 output is rounded to the nearest integer square, exact while the window
    diagonal is below 2000 px; larger windows use scipy's float64 transform.
    """
    if math.hypot(*target.shape) < 2000:
        raw = cv2.distanceTransform((~target).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    else:
        raw = ndi.distance_transform_edt(~target)
    d = raw.ravel()[at_flat].astype(np.float64)
    return np.rint(d * d).astype(np.int64)


@functools.cache
def _offsets(reach: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(squared lengths, row offsets, column offsets) of every non-zero offset with squared
    length up to ``reach``, in increasing order of length (read-only, computed once)."""
    r = math.isqrt(reach)
    dr, dc = (a.ravel() for a in np.mgrid[-r : r + 1, -r : r + 1])
    d2 = dr * dr + dc * dc
    keep = np.flatnonzero((d2 > 0) & (d2 <= reach))
    order = keep[np.argsort(d2[keep], kind="stable")]
    out = (d2[order], dr[order], dc[order])
    for a in out:
        a.setflags(write=False)
    return out


def squared_distances(target: np.ndarray, at: np.ndarray, *, thin: bool = False) -> np.ndarray:
    """Exact squared Euclidean distance (int64, pixels) from every True pixel of ``at``
    (row-major order) to the nearest True pixel of ``target`` (which must have one); both
    are boolean masks of one window.  ``thin``: the target is already its own 4-boundary
    (a boundary map), so the k-d tree takes all its pixels."""
    h, w = target.shape
    at_flat = np.flatnonzero(at)
    out = np.zeros(at_flat.size, dtype=np.int64)
    outside = np.flatnonzero(~target.ravel()[at_flat])
    if outside.size == 0:
        return out
    if outside.size > TRANSFORM_SHARE * h * w:
        out[outside] = transform_squared(target, at_flat[outside])
        return out
    rows, cols = np.divmod(at_flat[outside], w)
    d2 = np.zeros(outside.size, dtype=np.int64)
    r = math.isqrt(OFFSET_REACH)
    padded = np.zeros((h + 2 * r, w + 2 * r), dtype=bool)
    padded[r : r + h, r : r + w] = target
    flat = padded.ravel()
    ring_d2, dr, dc = _offsets(OFFSET_REACH)
    steps = dr * (w + 2 * r) + dc
    base = (rows + r) * (w + 2 * r) + (cols + r)
    stops = np.searchsorted(ring_d2, OFFSET_BANDS, side="right").tolist()
    # The first band holds one length (the four neighbours): plain gathers find its hits.
    hit = np.zeros(outside.size, dtype=bool)
    for step in steps[: stops[0]].tolist():
        hit |= flat[base + step]
    d2[hit] = ring_d2[0]
    pending = np.flatnonzero(~hit)
    start = stops[0]
    for stop in stops[1:]:
        if pending.size == 0:
            break
        for first in range(0, pending.size, CHUNK):  # bounds the temporary index matrix
            part = pending[first : first + CHUNK]
            hits = flat[base[part, None] + steps[None, start:stop]]
            first_hit = hits.argmax(axis=1)  # nearest offset of the band holding a target
            found = hits[np.arange(part.size), first_hit]
            d2[part[found]] = ring_d2[start:stop][first_hit[found]]
        pending = pending[d2[pending] == 0]
        start = stop
    if pending.size == 0:
        pass
    elif pending.size > TREE_SHARE * h * w:
        d2[pending] = transform_squared(target, at_flat[outside[pending]])
    elif pending.size:
        t_rows, t_cols = np.divmod(np.flatnonzero(target if thin else boundary(target)), w)
        points = np.column_stack((t_rows, t_cols)).astype(np.float64)
        tree = cKDTree(points, leafsize=32, balanced_tree=False, compact_nodes=False)
        q_rows, q_cols = rows[pending], cols[pending]
        _, nearest = tree.query(np.column_stack((q_rows, q_cols)).astype(np.float64))
        d2[pending] = (q_rows - t_rows[nearest]) ** 2 + (q_cols - t_cols[nearest]) ** 2
    out[outside] = d2
    return out
