"""The overlap table's routes (raw small ids combined directly, or ids made compact first;
OpenCV's histogram or bincount) give the same table, boxes and compact images."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from plugins.metrics import matching
from plugins.metrics.matching import overlap_table


def test_small_and_large_id_routes_agree() -> None:
    rng = np.random.default_rng(11)
    for _ in range(25):
        shape = (int(rng.integers(1, 40)), int(rng.integers(1, 40)))
        ref = rng.choice([0, 0, 2, 3, 9, 17], size=shape).astype(np.int32)
        pred = rng.choice([0, 1, 5, 6, 40], size=shape).astype(np.uint16)
        small = overlap_table(prediction=pred, reference=ref)
        big = overlap_table(
            prediction=np.where(pred > 0, pred.astype(np.int64) + 10**9, 0),
            reference=np.where(ref > 0, ref.astype(np.int64) * 10**6, 0),
        )
        assert small.ref_ids.tolist() == (big.ref_ids // 10**6).tolist()
        assert small.pred_ids.tolist() == (big.pred_ids - 10**9).tolist()
        np.testing.assert_array_equal(small.intersection, big.intersection)
        np.testing.assert_array_equal(small.ref_areas, big.ref_areas)
        np.testing.assert_array_equal(small.pred_areas, big.pred_areas)
        np.testing.assert_array_equal(small.ref_image, big.ref_image)
        np.testing.assert_array_equal(small.pred_image, big.pred_image)
        expected = [[np.count_nonzero((ref == a) & (pred == b)) for b in small.pred_ids]
                    for a in small.ref_ids]
        assert small.intersection.tolist() == expected


@pytest.mark.parametrize("hist_bins", [1024, 1, 10**6])
def test_pair_counts_routes_equal_bincount(hist_bins: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenCV's histogram, the 16-bit bincount and the wide bincount count alike."""
    monkeypatch.setattr(matching, "HIST_BINS", hist_bins)
    rng = np.random.default_rng(5)
    for top_r, top_p in ((0, 0), (3, 7), (30, 33), (255, 255), (300, 400)):
        shape = (int(rng.integers(1, 70)), int(rng.integers(1, 70)))
        ref = rng.integers(0, top_r + 1, size=shape)
        pred = rng.integers(0, top_p + 1, size=shape)
        expected = np.zeros((top_r + 1, top_p + 1), dtype=np.int64)
        np.add.at(expected, (ref.ravel(), pred.ravel()), 1)
        got = matching.pair_counts(ref, pred, top_r, top_p)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("n", [1, 7, 31, 32, 63, 64, 150])
def test_bounding_boxes_equal_find_objects(n: int) -> None:
    rng = np.random.default_rng(n)
    for _ in range(15):
        shape = (int(rng.integers(1, 50)), int(rng.integers(1, 50)))
        if shape[0] * shape[1] < n:
            continue
        image = rng.integers(0, n + 1, size=shape).astype(np.int32)
        image.ravel()[rng.choice(image.size, n, replace=False)] = np.arange(1, n + 1)
        assert matching.bounding_boxes(image, n) == ndi.find_objects(image, max_label=n)


@pytest.mark.parametrize(
    ("ids", "dtype"),
    [([1, 2, 3], np.uint8), ([2, 9, 255], np.uint8), ([3, 70000], np.uint8), ([], np.uint8)],
)
def test_relabel_gives_small_compact_images(ids: list[int], dtype: type) -> None:
    labels = np.array([[0, *ids], [*ids[::-1], 0]], dtype=np.int64)
    got = matching.relabel(labels, np.array(ids, dtype=np.int64))
    assert got.dtype == dtype
    lut = {0: 0} | {v: k + 1 for k, v in enumerate(ids)}
    assert got.tolist() == [[lut[v] for v in row] for row in labels.tolist()]


def test_relabel_of_many_objects_takes_sixteen_bits() -> None:
    ids = np.arange(1, 700) * 3
    labels = np.concatenate([[0], ids]).reshape(1, -1)
    got = matching.relabel(labels, ids)
    assert got.dtype == np.uint16 and got.ravel().tolist() == list(range(700))
