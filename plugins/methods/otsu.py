"""Otsu thresholding + post-processing: the simplest unsupervised nuclei baseline.

The intensity channel is the grayscale image (``channel="gray"``) or the hematoxylin optical
density from colour deconvolution (``channel="hematoxylin"``).  Polarity: nuclei are dark on a
bright background in brightfield/H&E and bright on a dark background in fluorescence;
``polarity="auto"`` decides per image from the background: nuclei are dark unless the median
grey level is near black (at most 0.25: fluorescence), as the DSB2018 study inverted images
whose background is bright (see ``features.bright_background``).  (Version 2 took the larger
side of the Otsu threshold as background, which called nuclei bright on dense H&E tiles.)  The Otsu mask then goes through the shared post-processing named by
``postprocess`` (``cc``: fill holes, drop small objects, connected components; ``watershed`` /
``score_watershed`` split touching nuclei), recorded in ``extras["postprocess"]``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import skimage  # its submodules load on first use (lazily), so importing this module stays cheap

from harness import Method, Prediction, hookimpl
from plugins.methods.features import bright_background, check_polarity, intensity_channel
from plugins.methods.postprocess import PostProcess, postprocess

__all__ = ["Otsu", "intensity_channel"]


class Otsu(Method):
    """Global Otsu threshold on one intensity channel, then the shared post-processing."""

    name = "otsu"
    version = "3"
    description = "Otsu threshold on intensity/hematoxylin + post-processing (components/watershed)"
    outputs = frozenset({"foreground", "instances"})
    learns = False

    def __init__(
        self,
        channel: Literal["gray", "hematoxylin"] = "gray",
        polarity: Literal["auto", "dark", "bright"] = "auto",
        min_size: int = 10,
        postprocess: str = "cc",
    ) -> None:
        if channel not in ("gray", "hematoxylin"):
            raise ValueError(f"otsu: unknown channel {channel!r}; use 'gray' or 'hematoxylin'")
        check_polarity(polarity, "otsu")
        PostProcess.for_mask(postprocess, min_size=min_size)
        self.channel = channel
        self.polarity = polarity
        self.min_size = min_size
        self.postprocess = postprocess

    def nucleus_score(self, image: np.ndarray) -> tuple[np.ndarray, bool]:
        """(intensity oriented so that nuclei are high, whether nuclei were dark)."""
        values = intensity_channel(image, self.channel)
        if self.channel == "hematoxylin":
            return values, False  # hematoxylin density is high on nuclei
        dark = self.polarity == "dark" or (self.polarity == "auto" and bright_background(values))
        return (1.0 - values if dark else values), dark

    def predict(self, image: np.ndarray) -> Prediction:
        score, dark = self.nucleus_score(image)
        if float(score.min()) == float(score.max()):
            mask = np.zeros(score.shape, dtype=bool)
            level = float(score.min())
        else:
            level = float(skimage.filters.threshold_otsu(score))
            mask = score > level
        params = PostProcess.for_mask(self.postprocess, min_size=self.min_size)
        foreground, instances = postprocess(score, params, foreground=mask)
        return Prediction(
            foreground=foreground,
            instances=instances,
            extras={"postprocess": params.as_dict(), "threshold": level, "nuclei_dark": dark},
        )


@hookimpl
def bench_register_methods(register):  # type: ignore[no-untyped-def]
    register(Otsu)
