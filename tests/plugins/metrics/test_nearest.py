"""The exact nearest-pixel distance core against scipy's Euclidean transform of the whole image
(or brute force), through each of its routes: offsets (one target, or one label per query),
k-d tree, bounded search for the largest distance, window transform."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from plugins.metrics import nearest
from plugins.metrics.boundary import boundary, boundary_statistics, surface_distances
from plugins.metrics.glas import object_hausdorff_statistics, pair_hausdorff
from plugins.metrics.matching import overlap_table, partners
from plugins.metrics.nearest import PAD, Target, band_search, pad, squared_distances

from ._helpers import perturb


def reference_squared(target: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Squared distances from scipy's exact transform of the full window (nearest indices)."""
    near_rows, near_cols = ndi.distance_transform_edt(
        ~target, return_distances=False, return_indices=True
    )
    rows, cols = np.indices(target.shape)
    return ((rows - near_rows) ** 2 + (cols - near_cols) ** 2)[at]  # type: ignore[no-any-return]


def random_masks(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A target (sparse dots, or blobs touching the border) and a query mask of one shape."""
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(1, 90, size=2))
    target = rng.random((h, w)) < rng.choice([0.002, 0.01, 0.05, 0.4])
    if seed % 2:
        target = ndi.binary_dilation(target, iterations=int(rng.integers(1, 6)))
        target[0, :] |= rng.random(w) < 0.3  # reach the image border
    if not target.any():
        target[int(rng.integers(h)), int(rng.integers(w))] = True
    at = rng.random((h, w)) < rng.choice([0.02, 0.2, 1.0])
    return target, at


@pytest.mark.parametrize(
    "route",
    [
        {},  # default choice between the routes
        {"TRANSFORM_SHARE": 2.0, "TREE_SHARE": 2.0, "OFFSET_BANDS": (1, 2)},  # mostly tree
        {"TRANSFORM_SHARE": 2.0, "TREE_SHARE": -1.0},  # offsets, then transform for the rest
        {"TRANSFORM_SHARE": -1.0},  # one transform
    ],
)
def test_squared_distances_equal_scipy_on_random_masks(
    route: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in route.items():
        monkeypatch.setattr(nearest, name, value)
    for seed in range(60):
        target, at = random_masks(seed)
        got = squared_distances(target, at)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, reference_squared(target, at), err_msg=f"seed {seed}")


def test_boundary_targets_marked_thin_give_the_same_distances(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(nearest, "TREE_SHARE", 2.0)  # the tree answers whatever is left
    for seed in range(40):
        target, at = random_masks(seed)
        edge = boundary(target)
        expected = reference_squared(edge, at)
        np.testing.assert_array_equal(squared_distances(edge, at, thin=True), expected)
        np.testing.assert_array_equal(squared_distances(edge, at), expected)


def test_far_sets_need_the_tree_and_are_still_exact() -> None:
    target = np.zeros((120, 150), bool)
    target[0, 0] = target[119, 3] = target[60, 149] = True  # corners and a border pixel
    at = np.zeros_like(target)
    at[50:53, 40:70] = True  # few pixels, all farther than the offsets reach
    got = squared_distances(target, at)
    assert got.min() > nearest.OFFSET_REACH  # none found through the offsets
    np.testing.assert_array_equal(got, reference_squared(target, at))


def blobs(rng: np.random.Generator, shape: tuple[int, int], n: int, grow: int) -> np.ndarray:
    """A label image of about n blobs (ids 1..)."""
    seeds = np.zeros(shape, np.int32)
    seeds.ravel()[rng.choice(seeds.size, n, replace=False)] = np.arange(1, n + 1)
    grown = ndi.grey_dilation(seeds, size=(2 * grow + 1, 2 * grow + 1))
    return grown * (rng.random(shape) < 0.97)  # a few holes: ids of several pieces


def test_band_search_by_label_equals_scipy() -> None:
    rng = np.random.default_rng(4)
    for _ in range(10):
        image = blobs(rng, (60, 70), 12, 3)
        flat, width = pad(image).ravel(), image.shape[1] + 2 * PAD
        rows, cols = np.nonzero(rng.random(image.shape) < 0.3)
        labels = rng.integers(1, 13, size=rows.size).astype(image.dtype)
        keep = (image[rows, cols] != labels) & np.isin(labels, image)
        rows, cols, labels = rows[keep], cols[keep], labels[keep]
        got = band_search(flat, width, (rows + PAD) * width + cols + PAD, labels)
        expected = np.empty_like(got)
        for label in np.unique(labels):
            at = labels == label
            full = reference_squared(image == label, np.ones(image.shape, bool))
            expected[at] = full.reshape(image.shape)[rows[at], cols[at]]
        near = expected <= nearest.OFFSET_REACH
        np.testing.assert_array_equal(got[near], expected[near])
        assert (got[~near] == -1).all()


def test_band_search_lets_crowded_owners_go_with_only_farther_pixels_left() -> None:
    """An owner with many far queries leaves early; its unresolved queries are then all
    farther than every one it resolved (so its largest distance is among them)."""
    target = np.zeros((120, 120), bool)
    target[55:65, 10:20] = True
    rows, cols = np.nonzero(~target)
    owners = (cols > 60).astype(np.intp)  # owner 1: far from the target; owner 0: near
    width = 120 + 2 * PAD
    got = band_search(pad(target).ravel(), width, (rows + PAD) * width + cols + PAD, owners=owners)
    exact = reference_squared(target, ~target)
    resolved = got >= 0
    np.testing.assert_array_equal(got[resolved], exact[resolved])
    for owner in (0, 1):
        mine = owners == owner
        left = mine & ~resolved
        if left.any():
            assert exact[left].min() > got[mine & resolved].max(initial=0)
    assert (~resolved & (owners == 1)).sum() > nearest.FAR_CROWD  # owner 1 did leave early


def test_max_squared_equals_brute_force_and_honours_the_cutoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(nearest, "MAX_DIRECT", 8)  # let the cell levels prune small sets too
    rng = np.random.default_rng(9)
    yy, xx = np.mgrid[:90, :90]
    ring = np.abs(np.hypot(yy - 45, xx - 45) - 30) < 2  # its farthest outside pixel: the centre
    cases = [(ring, np.hypot(yy - 45, xx - 45) < 20)]
    for _ in range(25):
        target = rng.random((90, 90)) < rng.choice([0.001, 0.01, 0.1])
        target[int(rng.integers(90)), int(rng.integers(90))] = True
        query = ndi.binary_dilation(
            rng.random((90, 90)) < 0.003, iterations=int(rng.integers(1, 9))
        )
        cases.append((target, query & ~target))
    for target, query in cases:
        if not query.any():
            continue
        t_rows, t_cols = np.nonzero(target)
        q_rows, q_cols = np.nonzero(query)
        exact = int(reference_squared(target, query).max())
        found = Target(t_rows, t_cols).max_squared(q_rows, q_cols)
        assert found == exact
        for cutoff in (exact, exact + 1, max(exact - 7, 0)):
            bounded = Target(t_rows, t_cols).max_squared(q_rows, q_cols, cutoff=cutoff)
            assert bounded == exact if exact < cutoff else bounded >= cutoff


def brute_hausdorff(ref: np.ndarray, pred: np.ndarray, r_id: int, p_id: int) -> float:
    g, s = ref == r_id, pred == p_id
    return float(
        max(ndi.distance_transform_edt(~s)[g].max(), ndi.distance_transform_edt(~g)[s].max())
    )


def glas_like_pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Blobs and a prediction that wraps them around the border, splits, drops, grows or
    shrinks them (:func:`perturb`), plus a ring around an object of its own (a farthest
    pixel inside a hole)."""
    rng = np.random.default_rng(seed)
    ref = blobs(rng, (80, 100), 9, int(rng.integers(3, 8)))
    pred = perturb(ref, rng)
    yy, xx = np.mgrid[:80, :100]
    radius = np.hypot(yy - 40, xx - 50)
    ref = np.where(radius < 6, 500, np.where(np.abs(radius - 16) < 2, 0, ref))
    pred = np.where(np.abs(radius - 16) < 2, 900, np.where(radius < 9, 0, pred))
    return pred, ref


@pytest.mark.parametrize("seed", range(6))
def test_pair_hausdorff_equals_full_image_transforms(seed: int) -> None:
    pred, ref = glas_like_pair(seed)
    table = overlap_table(prediction=pred, reference=ref)
    pairs = [(i, j) for i in range(table.n_ref) for j in range(table.n_pred)]
    got = pair_hausdorff(table, pairs)
    for (i, j), value in zip(pairs, got, strict=True):
        assert value == brute_hausdorff(ref, pred, table.ref_ids[i], table.pred_ids[j]), (i, j)


@pytest.mark.parametrize("seed", range(6))
def test_object_hausdorff_statistics_equal_brute_force(seed: int) -> None:
    """Partners, and the nearest object by Hausdorff distance for the unpartnered, from
    every pair's distance by full transforms."""
    pred, ref = glas_like_pair(seed)
    table = overlap_table(prediction=pred, reference=ref)
    every = np.array(
        [
            [brute_hausdorff(ref, pred, a, b) for b in table.pred_ids.tolist()]
            for a in table.ref_ids.tolist()
        ]
    )
    expected = {}
    for side, axis, areas, grid in (
        ("ref", 1, table.ref_areas, every),
        ("pred", 0, table.pred_areas, every.T),
    ):
        partner = partners(table.intersection, axis=axis)
        d = [grid[k, p] if p >= 0 else grid[k].min() for k, p in enumerate(partner.tolist())]
        expected[f"{side}_weighted"] = pytest.approx(float(np.dot(areas, d)), rel=1e-12)
        expected[f"{side}_area"] = float(areas.sum())
    assert object_hausdorff_statistics(table) == expected


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.5, 0.5)])
def test_boundary_statistics_with_missed_objects_equal_full_transforms(
    spacing: tuple[float, float],
) -> None:
    """Objects far from any other boundary: hd from the bounded search, hd95 from the near
    distances when the far ones stay above its percentile and from all of them otherwise,
    nsd at a tolerance beyond the offsets' reach."""
    rng = np.random.default_rng(12)
    for n_far in (1, 3, 40):
        ref = np.zeros((200, 200), bool)
        ref[90:110, 90:110] = True
        pred = ref.copy()
        pred[92:108, 92:108] = False  # a ring: its inner boundary lies 2 px inside
        for _ in range(n_far):  # missed specks, each at least 12 px from every boundary
            r, c = (int(v) for v in rng.choice(np.r_[10:60, 140:190], size=2))
            ref[r : r + 2, c : c + 2] = True
        bp, br = boundary(pred), boundary(ref)
        d_pr = ndi.distance_transform_edt(~br, sampling=spacing)[bp]
        d_rp = ndi.distance_transform_edt(~bp, sampling=spacing)[br]
        assert d_rp.max() > np.sqrt(nearest.OFFSET_REACH) * spacing[0]  # far pixels exist
        for tolerance in (2.0, 40.0):
            got = boundary_statistics(
                prediction=pred, reference=ref, spacing=spacing, tolerance=tolerance
            )
            assert got["hd"] == max(d_pr.max(), d_rp.max())
            assert got["hd95"] == max(np.percentile(d_pr, 95), np.percentile(d_rp, 95))
            within = np.count_nonzero(d_pr <= tolerance) + np.count_nonzero(d_rp <= tolerance)
            assert got["nsd"] == within / (d_pr.size + d_rp.size)
        d = surface_distances(prediction=pred, reference=ref, spacing=spacing)
        assert d is not None
        np.testing.assert_array_equal(d.distances(1), d_rp)
