"""Pixel features and stain helpers."""

from __future__ import annotations

import numpy as np
import pytest

from plugins.methods.features import (
    nuclei_are_dark,
    parse_groups,
    pixel_features,
    stain_scores,
    zscore_columns,
)


def test_feature_count_and_zscore() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    x = pixel_features(rgb, ("colour", "position", "gabor"), n_orientations=4)
    # 3 colour + 2 position + 3 sigmas × 4 orientations
    assert x.shape == (32 * 40, 3 + 2 + 12)
    assert np.allclose(x.mean(axis=0), 0, atol=1e-4)
    # z-scored, then each group scaled to total variance 1: column sd 1/sqrt(width)
    widths = [3] * 3 + [2] * 2 + [12] * 12
    assert np.allclose(x.std(axis=0), 1 / np.sqrt(widths), atol=1e-3)
    grey = np.repeat(rgb[..., :1], 3, axis=2)
    assert pixel_features(grey, ("colour",)).shape == (32 * 40, 1)


def test_group_weight_scales_its_columns() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    x = pixel_features(rgb, ("colour", "position"), weights={"position": 0.5})
    assert np.allclose(x[:, 3:].std(axis=0), 0.5 / np.sqrt(2), atol=1e-3)
    assert np.allclose(x[:, :3].std(axis=0), 1 / np.sqrt(3), atol=1e-3)


def test_constant_column_becomes_zero() -> None:
    x = np.array([[1.0, 5.0], [3.0, 5.0]])
    assert np.array_equal(zscore_columns(x), np.array([[-1.0, 0.0], [1.0, 0.0]], dtype=np.float32))


def test_parse_groups_rejects_unknown_names() -> None:
    assert parse_groups("colour, gabor") == ("colour", "gabor")
    with pytest.raises(ValueError, match="colour, position, gabor"):
        parse_groups("colour,sift")


def test_stain_scores_rank_hematoxylin_and_brightness() -> None:
    purple, pink, white = [90, 60, 140], [235, 190, 215], [250, 250, 250]
    bf = stain_scores(np.array([pink, purple, white]), dark_nuclei=True)
    assert np.argmax(bf) == 1
    fl = stain_scores(np.array([[10, 10, 10], [200, 200, 200]]), dark_nuclei=False)
    assert np.argmax(fl) == 1


def test_polarity_from_the_majority_side_of_otsu() -> None:
    bright_background = np.full((10, 10), 0.9)
    bright_background[:3, :3] = 0.1
    assert nuclei_are_dark(bright_background)
    assert not nuclei_are_dark(1.0 - bright_background)
    assert not nuclei_are_dark(bright_background, "bright")
