"""Post-processing on hand-made masks and score maps; expected results built by hand."""

from __future__ import annotations

import numpy as np
import pytest

from plugins.methods.postprocess import (
    PostProcess,
    binarize,
    majority_filter,
    postprocess,
    remove_small,
)


def disc(shape: tuple[int, int], centre: tuple[float, float], radius: float) -> np.ndarray:
    yy, xx = np.indices(shape)
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def test_boolean_mask_is_taken_as_is_whatever_the_level() -> None:
    mask = disc((20, 20), (10, 10), 5)
    # as float, True is 1.0 and 1.0 > level 1.0 is False: a float conversion would empty it
    assert np.array_equal(binarize(mask, PostProcess(level=1.0)), mask)
    assert np.array_equal(binarize(mask, PostProcess(threshold="otsu")), mask)


def test_fixed_and_otsu_thresholds() -> None:
    score = np.full((10, 10), 0.2)
    score[2:5, 2:5] = 0.8
    assert np.array_equal(binarize(score, PostProcess(level=0.5)), score > 0.5)
    assert np.array_equal(binarize(score, PostProcess(threshold="otsu")), score > 0.5)
    assert not binarize(np.full((4, 4), 0.7), PostProcess(threshold="otsu")).any()


def test_given_threshold_refuses_a_score_map() -> None:
    with pytest.raises(ValueError, match="given"):
        binarize(np.zeros((3, 3)), PostProcess(threshold="given"))


def test_hysteresis_keeps_weak_attached_to_strong_and_drops_isolated_weak() -> None:
    score = np.zeros((20, 30))
    score[5:10, 5:10] = 0.9  # strong
    score[5:10, 10:15] = 0.5  # weak, touching the strong block
    score[5:10, 22:27] = 0.5  # weak, isolated
    expected = np.zeros_like(score, dtype=bool)
    expected[5:10, 5:15] = True
    params = PostProcess(threshold="hysteresis", low=0.3, high=0.7, min_size=0)
    foreground, instances = postprocess(score, params)
    assert np.array_equal(foreground, expected)
    assert instances.max() == 1


def test_holes_are_filled_only_when_asked() -> None:
    ring = disc((30, 30), (15, 15), 10) & ~disc((30, 30), (15, 15), 4)
    filled, _ = postprocess(ring, PostProcess(fill_holes=True, min_size=0))
    kept, _ = postprocess(ring, PostProcess(fill_holes=False, min_size=0))
    assert np.array_equal(filled, disc((30, 30), (15, 15), 10))
    assert np.array_equal(kept, ring)


def test_small_objects_below_min_size_are_removed_8_connected() -> None:
    mask = np.zeros((20, 20), dtype=bool)
    mask[1:4, 1:4] = True  # 9 px: removed at min_size 10
    mask[10:12, 10:15] = True  # 10 px: kept
    mask[0:10, 10:20] = np.eye(10, dtype=bool)  # diagonal: 10 px, one object if 8-connected
    kept = remove_small(mask, 10)
    expected = mask.copy()
    expected[1:4, 1:4] = False
    assert np.array_equal(kept, expected)
    assert remove_small(mask, 0) is mask


def test_watershed_splits_two_touching_discs() -> None:
    shape = (50, 70)
    a, b = disc(shape, (25, 25), 10), disc(shape, (25, 43), 10)  # centres 18 px apart: overlap
    mask = a | b
    _, components = postprocess(mask, PostProcess(min_size=0))
    assert components.max() == 1
    _, split = postprocess(mask, PostProcess(split="watershed", min_size=0))
    assert split.max() == 2
    assert np.array_equal(split > 0, mask)
    # each object holds its own disc centre and its side of the mid-line x = 34
    for centre, side in (((25, 25), slice(0, 34)), ((25, 43), slice(35, 70))):
        label = split[centre]
        assert label > 0
        assert np.all(split[:, side][mask[:, side]] == label)


def test_score_watershed_cuts_along_the_valley_of_the_score() -> None:
    yy, xx = np.indices((40, 60))
    score = np.exp(-((yy - 20) ** 2 + (xx - 20) ** 2) / 60.0) + np.exp(-((yy - 20) ** 2 + (xx - 38) ** 2) / 60.0)
    params = PostProcess(level=0.3, split="score_watershed", min_size=0, smooth=0.0)
    foreground, instances = postprocess(score, params)
    assert instances.max() == 2
    assert np.array_equal(instances > 0, foreground)
    left, right = instances[20, 20], instances[20, 38]
    assert left != right
    # by symmetry the valley is the column x = 29: strictly left of it is the left blob
    assert np.all(instances[:, :29][foreground[:, :29]] == left)
    assert np.all(instances[:, 30:][foreground[:, 30:]] == right)
    _, one = postprocess(score, PostProcess(level=0.3, min_size=0))
    assert one.max() == 1


def test_score_watershed_on_a_flat_score_falls_back_to_distance() -> None:
    shape = (50, 70)
    mask = disc(shape, (25, 25), 10) | disc(shape, (25, 43), 10)
    params = PostProcess(split="score_watershed", min_size=0)
    _, instances = postprocess(mask.astype(float), params, foreground=mask)
    assert instances.max() == 2


def test_given_foreground_replaces_the_threshold() -> None:
    score = np.zeros((10, 10))
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:6, 2:6] = True
    foreground, instances = postprocess(score, PostProcess.for_mask("cc"), foreground=mask)
    assert np.array_equal(foreground, mask)
    assert instances.dtype == np.int32 and instances.max() == 1
    with pytest.raises(ValueError, match="shape"):
        postprocess(score, PostProcess(), foreground=mask[:5])


def test_majority_filter_removes_a_lone_pixel_and_keeps_straight_edges() -> None:
    labels = np.ones((6, 6), dtype=np.int32)
    labels[:, 3:] = 2
    noisy = labels.copy()
    noisy[2, 1] = 3
    assert np.array_equal(majority_filter(noisy, 3), labels)
    assert np.array_equal(majority_filter(noisy, 1), noisy)


def test_majority_filter_ties_go_to_the_smallest_label() -> None:
    # each window of the 1×2 image holds one 1 and one 2 (outside pixels are not counted)
    assert np.array_equal(majority_filter(np.array([[2, 1]]), 3), np.array([[1, 1]]))


def test_presets_and_bad_parameters() -> None:
    assert PostProcess.named("watershed").split == "watershed"
    assert PostProcess.for_mask("score_watershed", min_size=3).as_dict()["threshold"] == "given"
    assert PostProcess.for_mask("cc", min_size=3).min_size == 3
    with pytest.raises(ValueError, match="choose from"):
        PostProcess.named("nope")
    with pytest.raises(ValueError, match="own mask"):
        PostProcess.for_mask("hysteresis")
    with pytest.raises(ValueError, match="low <= high"):
        PostProcess(threshold="hysteresis", low=0.8, high=0.2)
    with pytest.raises(ValueError, match="split"):
        PostProcess(split="magic")  # type: ignore[arg-type]
