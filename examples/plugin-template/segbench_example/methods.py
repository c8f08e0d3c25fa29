"""``mean-threshold``: threshold at the image mean (+ an offset), then connected components.

A minimal example of a method plugin: metadata as class attributes, every parameter an explicit
keyword stored under its own name, ``predict`` returning a ``harness.Prediction``, and a
``bench_register_methods`` hook implementation that hands the class to segbench.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from harness import Method, Prediction, hookimpl


class MeanThreshold(Method):
    """Pixels darker (or brighter) than the mean grey level by ``offset`` are foreground."""

    name = "mean-threshold"
    version = "1"
    description = "Mean grey-level threshold + connected components (example plugin)"
    outputs = frozenset({"foreground", "instances"})

    def __init__(self, offset: float = 0.0, dark_objects: bool = True) -> None:
        self.offset = offset
        self.dark_objects = dark_objects

    def predict(self, image: np.ndarray) -> Prediction:
        grey = image[..., :3].astype(np.float64).mean(axis=2)
        level = grey.mean()
        mask = grey < level - self.offset if self.dark_objects else grey > level + self.offset
        instances, _ = ndi.label(mask)
        return Prediction(foreground=mask, instances=instances.astype(np.int32))


@hookimpl
def bench_register_methods(register):  # type: ignore[no-untyped-def]
    register(MeanThreshold)
