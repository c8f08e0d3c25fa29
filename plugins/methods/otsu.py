"""Otsu thresholding + connected components: the simplest unsupervised nuclei baseline.

The intensity channel is the grayscale image (``channel="gray"``) or the hematoxylin optical
density from colour deconvolution (``channel="hematoxylin"``).  Polarity: nuclei are dark on a
bright background in brightfield/H&E and bright on a dark background in fluorescence;
``polarity="auto"`` decides per image: the larger side of the threshold is background, so
nuclei are dark when most pixels lie above it (the DSB2018 study inverted images whose
background is bright).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage as ndi
from skimage.color import rgb2gray, rgb2hed
from skimage.filters import threshold_otsu

from harness import Method, Prediction, hookimpl


def intensity_channel(image: np.ndarray, channel: str) -> np.ndarray:
    """A float channel in which, for ``hematoxylin``, nuclei are bright."""
    if channel == "gray":
        return rgb2gray(image[..., :3])  # type: ignore[no-any-return]
    if channel == "hematoxylin":
        return rgb2hed(image[..., :3])[..., 0]  # type: ignore[no-any-return]
    raise ValueError(f"unknown channel {channel!r}; use 'gray' or 'hematoxylin'")


class Otsu(Method):
    """Global Otsu threshold on one intensity channel, then connected components."""

    name = "otsu"
    version = "1"
    description = "Otsu threshold on intensity/hematoxylin + connected components"
    outputs = frozenset({"foreground", "instances"})
    learns = False

    def __init__(
        self,
        channel: Literal["gray", "hematoxylin"] = "gray",
        polarity: Literal["auto", "dark", "bright"] = "auto",
        min_size: int = 10,
    ) -> None:
        self.channel = channel
        self.polarity = polarity
        self.min_size = min_size

    def predict(self, image: np.ndarray) -> Prediction:
        values = intensity_channel(image, self.channel)
        if float(values.min()) == float(values.max()):
            foreground = np.zeros(values.shape, dtype=bool)
        else:
            above = values > threshold_otsu(values)
            if self.channel == "hematoxylin":
                nuclei_dark = False  # hematoxylin density is high on nuclei
            elif self.polarity == "auto":
                nuclei_dark = np.count_nonzero(above) > above.size / 2
            else:
                nuclei_dark = self.polarity == "dark"
            foreground = ~above if nuclei_dark else above
        instances, _ = ndi.label(foreground)
        if self.min_size > 1 and instances.max() > 0:
            sizes = np.bincount(instances.ravel())
            small = sizes < self.min_size
            small[0] = False
            foreground = foreground & ~small[instances]
            instances, _ = ndi.label(foreground)
        return Prediction(foreground=foreground, instances=instances.astype(np.int32))


@hookimpl
def bench_register_methods(register):  # type: ignore[no-untyped-def]
    register(Otsu)
