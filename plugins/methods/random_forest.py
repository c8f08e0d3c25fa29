"""Supervised per-pixel random forests voting as an ensemble trained on groups of patients.

Features of a pixel: the grey values of the ``patch``×``patch`` window around it (``patch=1``:
the pixel's own grey value), optionally its colour and Gabor responses
(:mod:`plugins.methods.features`).  With ``polarity`` other than ``none`` (``auto``, ``dark``,
``bright``) the grey image is inverted where nuclei are dark, so nuclei are bright on every
image and a model carries across brightfield and fluorescence.  Labels: nucleus classes when every training sample has a
class map (``target="auto"`` or ``"classes"``), else nucleus/background.  Each of ``n_forests``
forests trains on its own group of patients (``meta["patient"]``, else a round-robin group of
images) with at most ``max_train_pixels`` pixels, shared evenly by the group's images: per
image up to half its share of nucleus pixels and as many background pixels (the background is
down-sampled to balance the classes).  Prediction: majority vote of the forests, an optional
``majority_size`` spatial majority filter of the class map, then the
shared post-processing.  Trees are stored as arrays (:mod:`plugins.methods.forest_arrays`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import skimage  # its submodules load on first use (lazily), so importing this module stays cheap

from harness import Method, Prediction, Sample, hookimpl
from plugins.methods.features import check_polarity, feature_channels, nuclei_are_dark
from plugins.methods.forest_arrays import check_packed, forest_votes, pack_forests
from plugins.methods.postprocess import PostProcess, majority_filter, postprocess

_CHUNK = 32768


class RandomForest(Method):
    """Per-pixel random-forest ensemble (supervised)."""

    name = "random_forest"
    version = "1"
    description = "Per-pixel random forests on grey patches (+colour/Gabor), patient-group vote"
    outputs = frozenset({"foreground", "instances", "classes"})
    learns = True

    def __init__(
        self,
        patch: int = 9,
        colour: bool = False,
        gabor: bool = False,
        n_orientations: int = 4,
        target: str = "auto",
        n_forests: int = 3,
        n_trees: int = 10,
        max_depth: int = 12,
        max_train_pixels: int = 20000,
        majority_size: int = 0,
        polarity: str = "none",
        postprocess: str = "cc",
        min_size: int = 10,
    ) -> None:
        if patch < 1 or patch % 2 == 0:
            raise ValueError(f"random_forest: patch must be a positive odd number, got {patch}")
        if target not in ("auto", "foreground", "classes"):
            raise ValueError(f"random_forest: target must be auto, foreground or classes, got {target!r}")
        if min(n_forests, n_trees, max_depth, max_train_pixels) < 1:
            raise ValueError("random_forest: n_forests, n_trees, max_depth, max_train_pixels must be >= 1")
        PostProcess.for_mask(postprocess, min_size=min_size)
        if polarity != "none":
            check_polarity(polarity, "random_forest")
        self.patch = patch
        self.colour = colour
        self.gabor = gabor
        self.n_orientations = n_orientations
        self.target = target
        self.n_forests = n_forests
        self.n_trees = n_trees
        self.max_depth = max_depth
        self.max_train_pixels = max_train_pixels
        self.majority_size = majority_size
        self.polarity = polarity
        self.postprocess = postprocess
        self.min_size = min_size
        self._packed: dict[str, np.ndarray] | None = None

    # ---- features: flat channel stack + per-feature offsets ------------------------------

    def _lookup(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
        """(flat padded channel stack, per-feature offsets, padded width, radius)."""
        groups = ["colour"] * self.colour + ["gabor"] * self.gabor
        grey = skimage.color.rgb2gray(image[..., :3]).astype(np.float32)
        if self.polarity != "none" and nuclei_are_dark(grey, self.polarity):
            grey = 1.0 - grey  # nuclei bright on every image, brightfield or fluorescence
        chans = [grey]
        if groups:
            chans += feature_channels(image, groups, self.n_orientations, grey_as_one=False)
        r = self.patch // 2
        stack = np.pad(np.stack(chans), ((0, 0), (r, r), (r, r)), mode="reflect")
        _, hp, wp = stack.shape
        dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
        offsets = [(dy * wp + dx).ravel()]
        offsets.append(np.arange(1, len(chans)) * hp * wp)
        return stack.ravel(), np.concatenate(offsets).astype(np.int64), wp, r

    @staticmethod
    def _base(rows: np.ndarray, cols: np.ndarray, wp: int, r: int) -> np.ndarray:
        return ((rows + r) * wp + (cols + r)).astype(np.int64)  # type: ignore[no-any-return]

    # ---- training -------------------------------------------------------------------------

    def _use_classes(self, train: Sequence[Sample]) -> bool:
        have = all(s.classes is not None for s in train)
        if self.target == "classes" and not have:
            raise ValueError("random_forest: target='classes' but some training samples have no class map")
        return have if self.target == "auto" else self.target == "classes"

    def _groups(self, train: Sequence[Sample]) -> list[list[int]]:
        if all("patient" in s.meta for s in train):
            keys = [str(s.meta["patient"]) for s in train]
        else:
            keys = [str(i) for i in range(len(train))]
        unique = sorted(set(keys), key=lambda k: (len(k), k))
        n = min(self.n_forests, len(unique))
        assign = {k: i % n for i, k in enumerate(unique)}
        return [[i for i, k in enumerate(keys) if assign[k] == g] for g in range(n)]

    def _pixels(
        self, sample: Sample, use_classes: bool, cap: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Features and labels of at most ``cap`` pixels: nucleus pixels (up to half the cap)
        and as many background pixels (at least 100 when the image has no nucleus)."""
        labels = sample.classes if use_classes else sample.foreground
        labels = np.asarray(labels, dtype=np.int64)
        valid = np.ones(labels.shape, bool) if sample.ignore is None else ~sample.ignore
        fg = np.flatnonzero((labels > 0) & valid)
        bg = np.flatnonzero((labels == 0) & valid)
        fg = rng.choice(fg, min(len(fg), max(cap // 2, 1)), replace=False)
        bg = rng.choice(bg, min(len(bg), max(len(fg), 100)), replace=False)
        idx = np.concatenate([fg, bg])
        flat, offsets, wp, r = self._lookup(sample.image)
        base = self._base(idx // labels.shape[1], idx % labels.shape[1], wp, r)
        return flat[base[:, None] + offsets[None, :]], labels.ravel()[idx]

    def fit(self, train: Sequence[Sample], validation: Sequence[Sample]) -> None:
        if not train:
            raise ValueError("random_forest: fit needs at least one training sample")
        from sklearn.ensemble import RandomForestClassifier  # imported here, so building the registry skips sklearn

        rng = np.random.default_rng(self.context.seed)
        use_classes = self._use_classes(train)
        forests, all_labels = [], []
        for group in self._groups(train):
            cap = -(-self.max_train_pixels // len(group))  # per image, rounded up
            parts = [self._pixels(train[i], use_classes, cap, rng) for i in group]
            x = np.concatenate([p[0] for p in parts])
            y = np.concatenate([p[1] for p in parts])
            if len(y) > self.max_train_pixels:
                keep = rng.choice(len(y), self.max_train_pixels, replace=False)
                x, y = x[keep], y[keep]
            forest = RandomForestClassifier(
                n_estimators=self.n_trees,
                max_depth=self.max_depth,
                random_state=int(rng.integers(2**31 - 1)),
                n_jobs=1,
            ).fit(x, y)
            forests.append(forest)
            all_labels.append(forest.classes_)
        classes = np.unique(np.concatenate(all_labels + [np.zeros(1, np.int64)]))
        self._packed = pack_forests(forests, classes)

    # ---- prediction -----------------------------------------------------------------------

    def predict(self, image: np.ndarray) -> Prediction:
        if self._packed is None:
            raise RuntimeError("random_forest: predict() before fit() or load_state_dict()")
        h, w = image.shape[:2]
        flat, offsets, wp, r = self._lookup(image)
        labels = np.empty(h * w, dtype=np.int64)
        score = np.empty(h * w)
        background = int(np.searchsorted(self._packed["classes"], 0))
        for start in range(0, h * w, _CHUNK):
            idx = np.arange(start, min(start + _CHUNK, h * w))
            base = self._base(idx // w, idx % w, wp, r)
            lab, mean = forest_votes(self._packed, flat, base, offsets)
            labels[idx] = lab
            score[idx] = 1.0 - mean[:, background]
        classes = majority_filter(labels.reshape(h, w), self.majority_size).astype(np.int32)
        params = PostProcess.for_mask(self.postprocess, min_size=self.min_size)
        foreground, instances = postprocess(score.reshape(h, w), params, foreground=classes > 0)
        classes = np.where(foreground, classes, 0).astype(np.int32)
        return Prediction(
            foreground=foreground,
            instances=instances,
            classes=classes,
            probabilities=score.reshape(h, w),
            extras={"postprocess": params.as_dict(), "classes": self._packed["classes"].tolist()},
        )

    def state_dict(self) -> dict[str, np.ndarray]:
        if self._packed is None:
            return {}
        return {k: v.copy() for k, v in self._packed.items()}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        packed = {k: np.asarray(v) for k, v in state.items()}
        check_packed(packed, "random_forest")
        self._packed = packed


@hookimpl
def bench_register_methods(register):  # type: ignore[no-untyped-def]
    register(RandomForest)
