"""Exact nearest-pixel distances between pixel sets (the distance core of the boundary
metrics and the GlaS object Hausdorff).

Squared Euclidean distances in pixels are integers, so they are computed exactly in integer
arithmetic, by whichever of three exact routes is cheapest for the query:

1. offsets (:func:`band_search`): every query pixel outside the target looks at the target
   pixels at the few offsets with squared length <= ``OFFSET_REACH`` in increasing order of
   length; the first hit is its distance (most boundary pixels of a fair prediction are
   resolved here).  Queries of many objects go together, each looking for its own label;
2. tree (:class:`Target`): the rest ask a k-d tree built on the target's 4-boundary (the
   nearest target pixel of an outside pixel always lies on that boundary: a target pixel
   whose four neighbours are all in the target has a neighbour one step closer to the
   query).  When only the largest distance counts (Hausdorff), a bounded search asks the
   tree for a few representatives and only the pixels that could still beat them;
3. transform: when the query pixels are many compared with the window, one exact distance
   transform of the window (OpenCV's Felzenszwalb transform, or scipy's for huge windows)
   is cheaper than either.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import ndimage as ndi

#: Largest squared offset length tried directly before the k-d tree takes over.
OFFSET_REACH = 128
#: Upper squared lengths of the bands of offsets tried together (nearest band first; the
#: first band must hold a single length).
OFFSET_BANDS = (1, 2, 5, 10, 18, 32, 64, 128)
#: A window transform (~20 ns a pixel) beats per-pixel queries (~0.5 µs in the tree, ~0.1 µs
#: through the offsets) once the query pixels exceed these fractions of the window.
TRANSFORM_SHARE = 0.04
TREE_SHARE = 0.01
#: Gathered pixels (queries x offsets) held at once by the offsets search (bounds its
#: temporary memory to about 1 MB).
CHUNK = 1 << 16
#: Border added around images searched through the offsets (the longest offset component).
PAD = math.isqrt(OFFSET_REACH)
#: Cell sides of the bounded search for a largest distance (:meth:`Target.max_squared`), and
#: the query count below which it simply asks for every distance.
MAX_CELLS = (8, 2)
MAX_DIRECT = 256
#: Unresolved queries above which an owner asking only for its largest distance leaves the
#: offsets search for the bounded k-d tree search, before the band reaching squared length
#: FAR_FROM (nearer bands are cheap and resolve most pixels of a fair prediction), or
#: before any band when more than FAR_SHARE of its queries are unresolved.
FAR_CROWD = 64
FAR_FROM = 10
FAR_SHARE = 0.8


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
        import cv2  # imported where used, so building the registry skips OpenCV

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


def pad(image: np.ndarray) -> np.ndarray:
    """``image`` with a zero border of width :data:`PAD`, so that every offset within the
    reach stays inside the array and never wraps to the next row."""
    out = np.zeros((image.shape[0] + 2 * PAD, image.shape[1] + 2 * PAD), dtype=image.dtype)
    out[PAD:-PAD, PAD:-PAD] = image
    return out


def band_search(
    flat: np.ndarray,
    width: int,
    base: np.ndarray,
    labels: np.ndarray | None = None,
    owners: np.ndarray | None = None,
) -> np.ndarray:
    """Exact squared distance (int64) from each query pixel to the nearest target pixel no
    farther than ``OFFSET_REACH``; -1 where none lies that close.

    ``flat`` is a padded image (:func:`pad`) raveled, ``width`` its row length and ``base``
    the queries' flat indices in it.  Target pixels are the True pixels of ``flat`` or, when
    ``labels`` is given, the pixels equal to each query's own label (queries of several
    objects at once).  Queries must not be target pixels themselves.

    ``owners`` (non-negative ints, one per query) marks queries asked only for their
    owner's largest distance: an owner with many queries still unresolved after a band
    leaves the search (:func:`_uncrowded`; its unresolved queries stay -1 and are all
    farther than every resolved one), as the k-d tree's bounded search answers it for less.
    """
    d2 = np.full(base.size, -1, dtype=np.int64)
    if base.size == 0:
        return d2
    ring_d2, dr, dc = _offsets(OFFSET_REACH)
    steps = dr * width + dc
    stops = np.searchsorted(ring_d2, OFFSET_BANDS, side="right").tolist()
    # The first band holds one length (the four neighbours): plain gathers find its hits.
    hit = np.zeros(base.size, dtype=bool)
    for step in steps[: stops[0]].tolist():
        hit |= flat[base + step] if labels is None else flat[base + step] == labels
    d2[hit] = ring_d2[0]
    pending = np.flatnonzero(~hit)
    asked = None if owners is None else np.bincount(owners)
    start = stops[0]
    for upper, stop in zip(OFFSET_BANDS[1:], stops[1:], strict=True):
        if pending.size == 0:
            break
        if asked is not None and pending.size > FAR_CROWD:
            pending = _uncrowded(pending, owners, asked, upper)  # type: ignore[arg-type]
        rows = max(1, CHUNK // (stop - start))  # bounds the temporary index matrix
        for first in range(0, pending.size, rows):
            part = pending[first : first + rows]
            hits = flat[base[part, None] + steps[None, start:stop]]
            if labels is not None:
                hits = hits == labels[part, None]
            first_hit = hits.argmax(axis=1)  # nearest offset of the band holding a target
            found = hits[np.arange(part.size), first_hit]
            d2[part[found]] = ring_d2[start:stop][first_hit[found]]
        pending = pending[d2[pending] < 0]
        start = stop
    return d2


def _uncrowded(
    pending: np.ndarray, owners: np.ndarray, asked: np.ndarray, upper: int
) -> np.ndarray:
    """The pending queries whose owner stays in the offsets search for the band up to
    squared length ``upper``: owners with more than ``FAR_CROWD`` unresolved queries leave
    before a band reaching ``FAR_FROM``, or earlier when most of their queries are still
    unresolved (the missing half of a split object, a stray piece far away)."""
    left = np.bincount(owners[pending], minlength=asked.size)
    crowded = (left > FAR_CROWD) & ((upper >= FAR_FROM) | (left > FAR_SHARE * asked))
    return pending[~crowded[owners[pending]]]


class Target:
    """Exact nearest-pixel queries against a fixed pixel set (a k-d tree on its points).

    Give it every pixel of the set, or only its 4-boundary: the queries answered are from
    pixels outside the set, whose nearest set pixel always lies on that boundary.
    """

    def __init__(self, rows: np.ndarray, cols: np.ndarray) -> None:
        self.rows = np.asarray(rows, dtype=np.int64)
        self.cols = np.asarray(cols, dtype=np.int64)
        points = np.column_stack((self.rows, self.cols)).astype(np.float64)
        from scipy.spatial import cKDTree  # imported where used, so building the registry skips it

        self.tree = cKDTree(points, leafsize=32, balanced_tree=False, compact_nodes=False)

    def squared(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Exact squared distance (int64) from each query pixel (outside the set)."""
        if rows.size == 0:
            return np.zeros(0, dtype=np.int64)
        _, nearest = self.tree.query(np.column_stack((rows, cols)).astype(np.float64))
        return (rows - self.rows[nearest]) ** 2 + (cols - self.cols[nearest]) ** 2

    def max_squared(self, rows: np.ndarray, cols: np.ndarray, *, cutoff: int | None = None) -> int:
        """The largest squared distance from the query pixels (outside the set, at least one).

        Exact, without asking for every query: distance to a set is 1-Lipschitz, so the
        distances of two pixels of one s×s cell differ by at most (s-1)·√2.  One representative per occupied cell gives a lower bound of the maximum;
        only cells whose representative comes within that slack of it can hold the maximum,
        and only their pixels go on (to finer cells, then to exact queries).  With
        ``cutoff``, a maximum of at least ``cutoff`` may be reported as any value >= cutoff.
        """
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        best = -1
        for cell in MAX_CELLS:
            if rows.size <= MAX_DIRECT:
                break
            r, c = rows - rows.min(), cols - cols.min()
            n_cols = int(c.max()) // cell + 1
            cell_of = (r // cell) * n_cols + c // cell
            n_cells = (int(r.max()) // cell + 1) * n_cols
            sparse = n_cells > 8 * rows.size  # pixels spread thin: no table over every cell
            if sparse:
                cells, reps = np.unique(cell_of, return_index=True)
            else:
                rep_of = np.full(n_cells, -1, dtype=np.intp)
                rep_of[cell_of] = np.arange(rows.size)  # any pixel of a cell represents it
                cells = np.flatnonzero(rep_of >= 0)
                reps = rep_of[cells]
            d2 = self.squared(rows[reps], cols[reps])
            best = max(best, int(d2.max()))
            if cutoff is not None and best >= cutoff:
                return best
            # float bounds, widened by a margin: the kept cells are a superset of the needed
            keep = np.sqrt(d2) + (cell - 1) * math.sqrt(2.0) >= math.sqrt(best) - 1e-6
            if sparse:
                inside = np.isin(cell_of, cells[keep])
            else:
                lookup = np.zeros(n_cells, dtype=bool)
                lookup[cells[keep]] = True
                inside = lookup[cell_of]
            rows, cols = rows[inside], cols[inside]
        if rows.size:
            best = max(best, int(self.squared(rows, cols).max()))
        return best


def squared_distances(
    target: np.ndarray, at: np.ndarray, *, thin: bool = False, resolve: bool = True
) -> np.ndarray:
    """Exact squared Euclidean distance (int64, pixels) from every True pixel of ``at``
    (row-major order) to the nearest True pixel of ``target`` (which must have one); both
    are boolean masks of one window.  ``thin``: the target is already its own 4-boundary
    (a boundary map), so the k-d tree takes all its pixels.  ``resolve=False`` leaves -1
    for pixels farther than ``OFFSET_REACH`` when the offsets answered the others (for
    callers that may never need those far values)."""
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
    d2 = band_search(pad(target).ravel(), w + 2 * PAD, (rows + PAD) * (w + 2 * PAD) + cols + PAD)
    pending = np.flatnonzero(d2 < 0)
    if pending.size == 0 or not resolve:
        pass
    elif pending.size > TREE_SHARE * h * w:
        d2[pending] = transform_squared(target, at_flat[outside[pending]])
    else:
        d2[pending] = target_points(target, thin=thin).squared(rows[pending], cols[pending])
    out[outside] = d2
    return out


def target_points(target: np.ndarray, *, thin: bool = False) -> Target:
    """A :class:`Target` on the 4-boundary of a boolean mask (all of it when ``thin``)."""
    t_rows, t_cols = np.nonzero(target if thin else boundary(target))
    return Target(t_rows, t_cols)
