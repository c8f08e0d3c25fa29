"""Per-pixel features and stain helpers shared by the classical methods.

Features per pixel: colour (RGB, or one grey channel when the image is grey), position (row,
column), and Gabor filter magnitudes (σ = 1, 3, 5, kernel 21×21, several orientations), each
z-scored over the image.  The "stain" score says how nucleus-like a colour is: hematoxylin
optical density on brightfield (nuclei dark/blue on a bright background), brightness on
fluorescence (nuclei bright on a dark background).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import skimage  # its submodules load on first use (lazily), so importing this module stays cheap

GABOR_SIGMAS: tuple[float, ...] = (1.0, 3.0, 5.0)
GABOR_KSIZE = 21
FEATURE_GROUPS = ("colour", "position", "gabor")


def intensity_channel(image: np.ndarray, channel: str) -> np.ndarray:
    """A float channel in which, for ``hematoxylin``, nuclei are bright."""
    if channel == "gray":
        return skimage.color.rgb2gray(image[..., :3])  # type: ignore[no-any-return]
    if channel == "hematoxylin":
        return skimage.color.rgb2hed(image[..., :3])[..., 0]  # type: ignore[no-any-return]
    raise ValueError(f"unknown channel {channel!r}; use 'gray' or 'hematoxylin'")


POLARITIES = ("auto", "dark", "bright")


def check_polarity(polarity: str, plugin: str) -> None:
    if polarity not in POLARITIES:
        raise ValueError(f"{plugin}: unknown polarity {polarity!r}; use {', '.join(POLARITIES)}")


def nuclei_are_dark(gray: np.ndarray, polarity: str = "auto") -> bool:
    """Whether nuclei are darker than background.

    ``auto``: the larger side of the Otsu threshold is background, so nuclei are dark when
    most pixels lie above it (brightfield), bright otherwise (fluorescence).
    """
    if polarity == "dark":
        return True
    if polarity == "bright":
        return False
    check_polarity(polarity, "nuclei_are_dark")
    if float(gray.min()) == float(gray.max()):
        return True
    above = gray > skimage.filters.threshold_otsu(gray)
    return bool(np.count_nonzero(above) > above.size / 2)


FLUORESCENCE_MEDIAN = 0.25


def bright_background(gray: np.ndarray) -> bool:
    """Whether the background is bright (brightfield, H&E: nuclei dark) rather than near
    black (fluorescence: nuclei bright): the median grey level (0–1) is above 0.25.

    Background covers most of a fluorescence image, so its median is a background pixel: at
    most 0.21 on every DSB2018 fluorescence image.  Dense H&E tissue has a mid-grey median
    (at least 0.34 on GlaS and 0.48 on DSB2018 histology), so "above half the range" or "the
    larger side of the Otsu threshold" (version 2) would call its nuclei bright."""
    return bool(float(np.median(gray)) > FLUORESCENCE_MEDIAN)


def is_grey(image: np.ndarray) -> bool:
    return bool(np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2]))


def parse_groups(features: str) -> tuple[str, ...]:
    """``"colour,position,gabor"`` → validated tuple (a string keeps the parameter simple)."""
    groups = tuple(g.strip() for g in features.split(",") if g.strip())
    unknown = [g for g in groups if g not in FEATURE_GROUPS]
    if unknown or not groups:
        raise ValueError(
            f"unknown feature group(s) {unknown or features!r}; use a comma list of {', '.join(FEATURE_GROUPS)}"
        )
    return groups


def gabor_responses(gray: np.ndarray, n_orientations: int, sigmas: Sequence[float] = GABOR_SIGMAS) -> list[np.ndarray]:
    """Magnitudes of complex Gabor responses (wavelength 3σ, aspect 0.5), one per σ×angle."""
    import cv2  # imported where used, so building the registry does not load OpenCV

    src = gray.astype(np.float32)
    out = []
    for sigma in sigmas:
        for k in range(n_orientations):
            theta = np.pi * k / n_orientations
            parts = [
                cv2.getGaborKernel((GABOR_KSIZE, GABOR_KSIZE), sigma, theta, 3.0 * sigma, 0.5, psi)
                for psi in (0.0, np.pi / 2)
            ]
            real, imag = (cv2.filter2D(src, cv2.CV_32F, kern.astype(np.float32)) for kern in parts)
            out.append(np.sqrt(real * real + imag * imag))
    return out


def feature_channels(
    image: np.ndarray, groups: Sequence[str], n_orientations: int = 4, grey_as_one: bool = True
) -> list[np.ndarray]:
    """H×W float32 channels of the requested groups, not yet normalised.

    ``grey_as_one``: a grey image gives one colour channel instead of three equal ones (set it
    False where every image must give the same number of features).
    """
    rgb = image[..., :3]
    gray = skimage.color.rgb2gray(rgb).astype(np.float32)
    channels: list[np.ndarray] = []
    if "colour" in groups:
        if grey_as_one and is_grey(rgb):
            channels.append(gray)
        else:
            channels.extend(rgb[..., c].astype(np.float32) / 255.0 for c in range(3))
    if "position" in groups:
        rows, cols = np.indices(gray.shape, dtype=np.float32)
        channels.extend([rows, cols])
    if "gabor" in groups:
        channels.extend(gabor_responses(gray, n_orientations))
    return channels


def zscore_columns(x: np.ndarray) -> np.ndarray:
    """Each column to mean 0, std 1 (constant columns to 0)."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std == 0] = 1.0
    return ((x - mean) / std).astype(np.float32)  # type: ignore[no-any-return]


def pixel_features(
    image: np.ndarray,
    groups: Sequence[str],
    n_orientations: int = 4,
    weights: dict[str, float] | None = None,
) -> np.ndarray:
    """(H·W)×F float32 matrix of z-scored features.

    Each group's columns are scaled by ``weight / sqrt(n_columns)``, so a group's total variance
    is its weight squared whatever its width (12 Gabor columns do not outvote 3 colour ones).
    """
    weights = weights or {}
    columns = []
    for group in groups:
        chans = feature_channels(image, (group,), n_orientations)
        block = zscore_columns(np.stack([c.ravel() for c in chans], axis=1))
        columns.append(block * np.float32(weights.get(group, 1.0) / np.sqrt(block.shape[1])))
    return np.concatenate(columns, axis=1)


def stain_scores(mean_colours: np.ndarray, dark_nuclei: bool) -> np.ndarray:
    """How nucleus-like each RGB colour (K×3, 0–255) is: hematoxylin density if nuclei are dark
    (brightfield), brightness if they are bright (fluorescence)."""
    rgb = np.clip(np.asarray(mean_colours, dtype=np.float64) / 255.0, 0.0, 1.0)
    if dark_nuclei:
        return skimage.color.rgb2hed(rgb[None, :, :])[0, :, 0]  # type: ignore[no-any-return]
    return skimage.color.rgb2gray(rgb[None, :, :])[0]  # type: ignore[no-any-return]
