"""The overlap table's two routes (raw small ids combined directly, or ids made compact
first) give the same table and compact images."""

from __future__ import annotations

import numpy as np

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
