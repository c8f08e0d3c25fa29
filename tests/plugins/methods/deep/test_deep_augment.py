"""Patches and augmentation keep image and labels aligned; seeded validation hold-out."""

from __future__ import annotations

import numpy as np
import pytest

from harness import Sample
from plugins.methods.deep.augment import Augment, augment, random_crop
from plugins.methods.deep.data import TrainingSet, split_validation


def _coded(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """An image whose red channel encodes the label of each pixel."""
    labels = np.arange(h * w, dtype=np.int64).reshape(h, w) % 7
    image = np.zeros((h, w, 3), np.float32)
    image[..., 0] = labels / 10.0
    image[..., 1] = np.linspace(0, 1, w)[None, :]
    return image, labels


def test_crop_pads_small_images_and_marks_padding_invalid() -> None:
    image, labels = _coded(5, 9)
    patch = random_crop(image, labels, np.ones((5, 9), bool), 8, np.random.default_rng(0))
    assert patch.image.shape == (8, 8, 3) and patch.labels.shape == (8, 8)
    assert np.count_nonzero(~patch.valid) == 3 * 8  # 3 padded rows, crop of 8 of 9 columns
    assert not patch.valid[5:].any() and (patch.labels[5:] == 0).all()


@pytest.mark.parametrize("seed", range(8))
def test_flips_and_rotations_move_image_and_labels_together(seed: int) -> None:
    image, labels = _coded(16, 16)
    patch = random_crop(image, labels, np.ones((16, 16), bool), 12, np.random.default_rng(seed))
    out = augment(patch, Augment(affine=0.0, colour=0.0), np.random.default_rng(seed))
    np.testing.assert_array_equal(np.rint(out.image[..., 0] * 10).astype(np.int64), out.labels)
    assert sorted(np.unique(out.labels)) == sorted(np.unique(patch.labels))


def test_affine_keeps_labels_on_the_pixels_they_code() -> None:
    image, labels = _coded(32, 32)
    image[..., 0] = (labels > 3) * 1.0  # a binary code survives order-0 vs order-1 sampling
    patch = random_crop(image, (labels > 3).astype(np.int64), np.ones((32, 32), bool), 32, np.random.default_rng(0))
    out = augment(patch, Augment(flips=False, rot90=False, affine=1.0, colour=0.0), np.random.default_rng(3))
    agree = np.mean((out.image[..., 0] > 0.5) == (out.labels > 0))
    assert agree > 0.9
    assert not np.array_equal(out.labels, patch.labels)  # the affine did move pixels


def test_colour_jitter_changes_only_the_image_and_stays_in_range() -> None:
    image, labels = _coded(12, 12)
    patch = random_crop(image, labels, np.ones((12, 12), bool), 12, np.random.default_rng(0))
    out = augment(patch, Augment(flips=False, rot90=False, affine=0.0, colour=0.2), np.random.default_rng(1))
    np.testing.assert_array_equal(out.labels, labels)
    assert out.image.min() >= 0 and out.image.max() <= 1
    assert not np.allclose(out.image, image)


def test_unknown_augmentation_preset() -> None:
    with pytest.raises(ValueError, match="choose from none, geometric, default"):
        Augment.named("heavy")


def _samples(n: int) -> list[Sample]:
    image = np.zeros((4, 4, 3), np.uint8)
    return [Sample(id=f"s{i}", image=image, instances=np.zeros((4, 4), np.int32)) for i in range(n)]


def test_validation_is_given_or_a_seeded_tenth_of_train() -> None:
    train = _samples(20)
    kept, held = split_validation(train, _samples(1), seed=0)
    assert len(kept) == 20 and len(held) == 1
    kept, held = split_validation(train, [], seed=5)
    assert len(held) == 2 and len(kept) == 18
    assert {s.id for s in kept} | {s.id for s in held} == {s.id for s in train}
    assert [s.id for s in split_validation(train, [], seed=5)[1]] == [s.id for s in held]
    assert split_validation(train[:1], [], seed=0) == (train[:1], train[:1])


def test_held_out_part_has_a_minimum_size_once_train_is_large_enough() -> None:
    # GlaS: 85 training images -> round(8.5) = 8 at 10%, raised to 16
    kept, held = split_validation(_samples(85), [], seed=0)
    assert (len(kept), len(held)) == (69, 16)
    # 31 < 2 x 16: the tenth alone, round(3.1) = 3
    assert len(split_validation(_samples(31), [], seed=0)[1]) == 3
    # exactly twice the minimum: 16 of 32
    assert len(split_validation(_samples(32), [], seed=0)[1]) == 16
    # a tenth above the minimum is kept: 20 of 200
    assert len(split_validation(_samples(200), [], seed=0)[1]) == 20
    assert len(split_validation(_samples(85), [], seed=0, minimum=4)[1]) == 8


def test_training_set_excludes_ignored_pixels() -> None:
    ignore = np.zeros((4, 4), bool)
    ignore[0] = True
    sample = Sample(
        id="a",
        image=np.zeros((4, 4, 3), np.uint8),
        instances=np.ones((4, 4), np.int32),
        ignore=ignore,
    )
    data = TrainingSet.from_samples([sample], "foreground")
    assert data.valid[0].sum() == 12 and data.labels[0].sum() == 16
