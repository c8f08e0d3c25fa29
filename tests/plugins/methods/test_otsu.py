"""Otsu on hand-made brightfield-style and fluorescence-style images, and on synthetic data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from plugins.datasets.synthetic import Synthetic
from plugins.methods.features import bright_background, intensity_channel, nuclei_are_dark
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


# ---- polarity from the background (version 3) -----------------------------------------


def test_background_rule_by_hand_on_dense_tissue() -> None:
    """60 % nuclei and stroma at grey 0.35, 40 % white background at 0.95."""
    gray = np.where(np.arange(100).reshape(10, 10) < 60, 0.35, 0.95)
    assert bright_background(gray)  # median 0.35 > 0.25: brightfield, nuclei dark
    assert not nuclei_are_dark(gray)  # the version-2 rule: the larger Otsu side is "background"
    fluorescence = np.where(np.arange(100).reshape(10, 10) < 30, 0.9, 0.05)  # 30 % nuclei
    assert not bright_background(fluorescence)  # median 0.05: nuclei bright
    image = (np.repeat(gray[..., None], 3, axis=2) * 255).astype(np.uint8)
    assert Otsu().predict(image).extras["nuclei_dark"] is True


def test_embedded_sample_polarity_per_image_type() -> None:
    """Fluorescence nuclei are bright, histology nuclei dark, on every embedded image."""
    from plugins.datasets.dsb2018_sample import DSB2018Sample

    data = DSB2018Sample()
    kinds = {}
    for split in data.splits:
        for sample_id in data.sample_ids(split):
            sample = data.load(split, sample_id)
            dark = Otsu().predict(sample.image).extras["nuclei_dark"]
            kinds.setdefault(sample.meta["type"], set()).add(dark)
    assert kinds == {"fluorescence": {False}, "histology": {True}}


def test_glas_h_and_e_nuclei_are_dark_on_every_tile() -> None:
    """GlaS is H&E: the background rule calls nuclei dark on every test tile; on the tiles where
    the version-2 rule called them bright (55 of the 80), the dark-object mask covers the glands
    far better (mean Dice gain 0.28 measured; 0.2 asserted)."""
    root = Path(os.environ.get("BENCH_DATA", "")) / "glas"
    if not (root / "Grade.csv").is_file():
        pytest.skip(f"real GlaS copy not found at {root}")
    from plugins.datasets.glas import GlaS

    data, method = GlaS(root=root), Otsu()
    gains = []
    for split in data.eval_splits:
        for sample_id in data.sample_ids(split):
            sample = data.load(split, sample_id)
            prediction = method.predict(sample.image)
            assert prediction.extras["nuclei_dark"] is True, sample_id
            if not nuclei_are_dark(intensity_channel(sample.image, "gray")):
                old = Otsu(polarity="bright").predict(sample.image)
                gains.append(
                    dice(prediction=prediction.foreground, reference=sample.instances)
                    - dice(prediction=old.foreground, reference=sample.instances)
                )
    assert len(gains) >= 20 and float(np.mean(gains)) > 0.2, (len(gains), np.mean(gains))
