"""Comparison with established packages on random realistic label images (the [reference]
extra; each test is skipped only when its package is absent)."""

from __future__ import annotations

import numpy as np
import pytest

from plugins.metrics.boundary import boundary, boundary_statistics
from plugins.metrics.classes import dice_per_class
from plugins.metrics.glas import pair_hausdorff
from plugins.metrics.instance import DSB_PERCENTS, dsb_map, dsb_statistics, f1_at_iou
from plugins.metrics.matching import overlap_table

from ._helpers import boxes, realistic_pair

pytestmark = pytest.mark.reference
SEEDS = range(8)


def _ties(pred: np.ndarray, ref: np.ndarray) -> list[int]:
    """Per DSB threshold, the number of pairs whose IoU equals it exactly."""
    t = overlap_table(prediction=pred, reference=ref)
    return [
        int(((100 * t.intersection == k * t.union) & (t.intersection > 0)).sum())
        for k in DSB_PERCENTS
    ]


@pytest.mark.parametrize("seed", SEEDS)
def test_dsb_map_and_f1_match_stardist(seed: int) -> None:
    matching = pytest.importorskip("stardist.matching")
    pred, ref = realistic_pair(seed)
    theirs = [matching.matching(ref, pred, thresh=k / 100, criterion="iou") for k in DSB_PERCENTS]
    stats = dsb_statistics(overlap_table(prediction=pred, reference=ref))
    # stardist matches at IoU >= t, we at IoU > t: the TP counts differ exactly by the ties.
    ties = _ties(pred, ref)
    assert [m.tp for m in theirs] == [stats[f"tp_{k}"] + n for k, n in zip(DSB_PERCENTS, ties)]
    ours = f1_at_iou(prediction=pred, reference=ref)
    if not any(ties):
        assert dsb_map(prediction=pred, reference=ref) == pytest.approx(
            np.mean([m.accuracy for m in theirs]), abs=1e-12
        )
    if ties[0] == 0:
        at_half = theirs[0]
        assert ours == pytest.approx(
            {"value": at_half.f1, "precision": at_half.precision, "recall": at_half.recall},
            abs=1e-12,
        )


def test_stardist_counts_an_iou_equal_to_the_threshold_we_do_not() -> None:
    matching = pytest.importorskip("stardist.matching")
    ref = boxes((8, 8), (1, 0, 4, 0, 4), (2, 4, 8, 4, 8))
    pred = boxes((8, 8), (1, 0, 4, 0, 3), (2, 4, 8, 4, 8))  # IoU exactly 0.75 and 1.0
    theirs = [matching.matching(ref, pred, thresh=k / 100).tp for k in DSB_PERCENTS]
    # the only difference: at t = 0.75 stardist (>=) has one more TP than we do (>)
    assert theirs == [2] * 6 + [1] * 4
    accuracy = [tp / (tp + (2 - tp) + (2 - tp)) for tp in theirs]
    ours = dsb_map(prediction=pred, reference=ref)
    assert np.mean(accuracy) - ours == pytest.approx((1 - 1 / 3) / 10)


@pytest.mark.parametrize("seed", SEEDS)
def test_object_hausdorff_matches_scikit_image(seed: int) -> None:
    from skimage.metrics import hausdorff_distance

    pred, ref = realistic_pair(seed, n_objects=12)
    t = overlap_table(prediction=pred, reference=ref)
    pairs = [
        (i, j)
        for i in range(t.n_ref)
        for j in np.flatnonzero(t.intersection[i] > 0)[:2].tolist() + [0]
    ]
    for (i, j), ours in zip(pairs, pair_hausdorff(t, pairs), strict=True):
        expected = hausdorff_distance(ref == t.ref_ids[i], pred == t.pred_ids[j])
        assert ours == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_boundary_hd_matches_scikit_image(seed: int) -> None:
    from skimage.metrics import hausdorff_distance

    pred, ref = realistic_pair(seed)
    expected = hausdorff_distance(boundary(pred > 0), boundary(ref > 0))
    assert boundary_statistics(prediction=pred, reference=ref)["hd"] == pytest.approx(expected)


def _one_hot(mask: np.ndarray):  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    m = torch.as_tensor(mask > 0)
    return torch.stack([~m, m])[None].float()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.5, 0.25)])
def test_hd_hd95_nsd_match_monai(seed: int, spacing: tuple[float, float]) -> None:
    metrics = pytest.importorskip("monai.metrics")
    pred, ref = realistic_pair(seed)
    p, r = _one_hot(pred), _one_hot(ref)
    ours = boundary_statistics(prediction=pred, reference=ref, spacing=spacing, tolerance=1.5)
    hd = metrics.compute_hausdorff_distance(p, r, spacing=list(spacing))
    hd95 = metrics.compute_hausdorff_distance(p, r, percentile=95, spacing=list(spacing))
    nsd = metrics.compute_surface_dice(p, r, class_thresholds=[1.5], spacing=list(spacing))
    assert ours["hd"] == pytest.approx(float(hd), rel=1e-6)
    assert ours["hd95"] == pytest.approx(float(hd95), rel=1e-6)
    assert ours["nsd"] == pytest.approx(float(nsd), rel=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_dice_per_class_matches_torchmetrics(seed: int) -> None:
    segmentation = pytest.importorskip("torchmetrics.functional.segmentation")
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 4, size=(32, 32))
    pred = np.where(rng.random((32, 32)) < 0.3, rng.integers(0, 4, size=(32, 32)), ref)
    theirs = segmentation.dice_score(
        torch.as_tensor(pred)[None],
        torch.as_tensor(ref)[None],
        num_classes=4,
        include_background=False,
        average="none",
        input_format="index",
    )[0]
    ours = dice_per_class(prediction=pred, reference=ref)
    assert [ours[f"class_{c}"] for c in (1, 2, 3)] == pytest.approx(theirs.tolist(), rel=1e-6)
    assert ours["value"] == pytest.approx(float(theirs.mean()), rel=1e-6)
