"""Otsu on hand-made brightfield-style and fluorescence-style images, and on synthetic data."""

from __future__ import annotations

import numpy as np
import pytest

from plugins.datasets.synthetic import Synthetic
from plugins.methods.otsu import Otsu
from plugins.metrics.pixel import dice


def two_touching_discs(style: str) -> tuple[np.ndarray, np.ndarray]:
    """Two overlapping discs (radius 10, centres 18 px apart) and the union mask."""
    yy, xx = np.indices((50, 70))
    mask = ((yy - 25) ** 2 + (xx - 25) ** 2 <= 100) | ((yy - 25) ** 2 + (xx - 43) ** 2 <= 100)
    rng = np.random.default_rng(0)
    if style == "brightfield":  # dark purple nuclei on a pink background
        colour = np.where(mask[..., None], [90, 60, 140], [235, 200, 220])
    else:  # bright grey nuclei on a black background
        colour = np.where(mask[..., None], [200, 200, 200], [10, 10, 10])
    image = np.clip(colour + rng.normal(0, 5, colour.shape), 0, 255).astype(np.uint8)
    return image, mask


@pytest.mark.parametrize(("style", "dark"), [("brightfield", True), ("fluorescence", False)])
def test_auto_polarity_finds_the_nuclei(style: str, dark: bool) -> None:
    image, mask = two_touching_discs(style)
    prediction = Otsu().predict(image)
    assert prediction.extras["nuclei_dark"] is dark
    # contrast 140+ grey levels against noise sd 5: every pixel lands on the right side
    assert np.array_equal(prediction.foreground, mask)
    # the wrong polarity selects the background instead (raw: no hole filling of the nuclei)
    wrong = Otsu(polarity="bright" if dark else "dark", postprocess="raw").predict(image)
    assert np.array_equal(wrong.foreground, ~mask)


def test_postprocess_preset_is_applied_and_recorded() -> None:
    image, _ = two_touching_discs("brightfield")
    joined = Otsu().predict(image)
    split = Otsu(postprocess="watershed").predict(image)
    assert joined.instances.max() == 1
    assert split.instances.max() == 2
    assert split.extras["postprocess"]["split"] == "watershed"
    assert split.extras["postprocess"]["threshold"] == "given"
    assert split.extras["postprocess"]["min_size"] == 10


def test_bad_parameters_name_the_choices() -> None:
    with pytest.raises(ValueError, match="choose from"):
        Otsu(postprocess="hysteresis")
    with pytest.raises(ValueError, match="polarity"):
        Otsu(polarity="sideways")  # type: ignore[arg-type]


def test_synthetic_dice_and_params_round_trip() -> None:
    samples = list(Synthetic(n_test=3, style="mixed").samples("test"))
    method = Otsu()
    scores = [dice(prediction=method.predict(s.image).foreground, reference=s.instances) for s in samples]
    # synthetic nuclei differ from background by >100 grey levels; only the 1-px blurred rim is
    # ambiguous, so Dice above 0.9 is attainable on both styles
    assert min(scores) > 0.9
    assert type(method)(**method.get_params()).get_params() == method.get_params()


def test_constant_image_gives_empty_prediction() -> None:
    prediction = Otsu().predict(np.full((8, 8, 3), 128, np.uint8))
    assert not prediction.foreground.any() and prediction.instances.max() == 0
