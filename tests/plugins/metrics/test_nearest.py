"""The exact nearest-pixel distance core against scipy's Euclidean transform of the whole image,
through each of its three routes (offsets, k-d tree, window transform)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from plugins.metrics import nearest
from plugins.metrics.boundary import boundary, boundary_statistics
from plugins.metrics.glas import _hausdorff
from plugins.metrics.matching import distances_at, overlap_table
from plugins.metrics.nearest import squared_distances


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


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.5, 0.5), (0.5, 2.0)])
def test_distances_at_equal_scipy_with_spacing(spacing: tuple[float, float]) -> None:
    for seed in range(20):
        target, at = random_masks(seed)
        expected = ndi.distance_transform_edt(~target, sampling=spacing)[at]
        got = distances_at(target, at, spacing)
        if spacing == (1.0, 1.0):
            np.testing.assert_array_equal(got, expected)
        else:
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.7, 0.7), (1.0, 3.0)])
def test_boundary_statistics_equal_full_image_transforms(spacing: tuple[float, float]) -> None:
    rng = np.random.default_rng(7)
    for _ in range(12):
        ref = ndi.binary_dilation(rng.random((70, 90)) < 0.01, iterations=3)
        pred = np.roll(ref, tuple(rng.integers(-3, 4, size=2)), axis=(0, 1))
        pred[: int(rng.integers(0, 10)), :] = True  # touches the image border
        bp, br = boundary(pred), boundary(ref)
        d_pr = ndi.distance_transform_edt(~br, sampling=spacing)[bp]
        d_rp = ndi.distance_transform_edt(~bp, sampling=spacing)[br]
        got = boundary_statistics(prediction=pred, reference=ref, spacing=spacing, tolerance=2.0)
        assert got["hd"] == pytest.approx(max(d_pr.max(), d_rp.max()), rel=1e-12)
        expected95 = max(np.percentile(d_pr, 95), np.percentile(d_rp, 95))
        assert got["hd95"] == pytest.approx(expected95, rel=1e-12)
        within = np.count_nonzero(d_pr <= 2.0) + np.count_nonzero(d_rp <= 2.0)
        assert got["nsd"] == within / (d_pr.size + d_rp.size)


def test_object_hausdorff_equals_full_image_transforms() -> None:
    rng = np.random.default_rng(3)
    ref = ndi.label(ndi.binary_dilation(rng.random((80, 100)) < 0.004, iterations=5))[0]
    pred = ndi.label(np.roll(ref > 0, (2, -3), axis=(0, 1)) & (rng.random(ref.shape) < 0.97))[0]
    table = overlap_table(prediction=pred, reference=ref)
    for i in range(table.n_ref):
        for j in range(table.n_pred):
            g, s = ref == table.ref_ids[i], pred == table.pred_ids[j]
            expected = max(
                ndi.distance_transform_edt(~s)[g].max(), ndi.distance_transform_edt(~g)[s].max()
            )
            assert _hausdorff(table, i, j) == expected
