"""Tumour-nucleus detection: SIFT keypoints on a denoised grey image, labelled by an RBF SVM.

Pipeline per image: grey → non-local-means denoising (``cv2.fastNlMeansDenoising``, strength
``denoise_h``; 0 turns it off) → SIFT keypoints and 128-d descriptors (``cv2.SIFT_create``) →
an SVM (``sklearn.svm.SVC``, RBF kernel) says tumour (1) or not (0) for each keypoint.  Training
labels come from the class maps: a keypoint is positive when the class under it is in
``meta["positive_classes"]`` (default ``(1,)``); with ``mask_training`` only keypoints inside
annotated objects are used (the SVM then never sees background keypoints, which at prediction
time it labels as whichever nucleus class they resemble; off by default).  Output: ``detections`` (points N×2 row/col, labels N) and the
tumour count per image in ``extras["positive_count"]``.  The fitted SVM is stored as arrays
(support vectors, dual coefficients, intercept, gamma) and evaluated with numpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from harness import Method, Prediction, Sample, hookimpl

_STATE_KEYS = ("support_vectors", "dual_coef", "intercept", "gamma")


def grey_uint8(image: np.ndarray) -> np.ndarray:
    import cv2  # imported where used, so building the registry does not load OpenCV

    return cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)  # type: ignore[no-any-return]


def rbf_decision(
    x: np.ndarray,
    support_vectors: np.ndarray,
    dual_coef: np.ndarray,
    intercept: float,
    gamma: float,
) -> np.ndarray:
    """Σ_i α_i exp(-γ‖x - s_i‖²) + b for each row of ``x`` (sklearn's binary decision_function)."""
    if len(support_vectors) == 0:
        return np.full(len(x), float(intercept))
    x = np.asarray(x, dtype=np.float64)
    d2 = (
        (x * x).sum(axis=1)[:, None]
        - 2.0 * x @ support_vectors.T
        + (support_vectors * support_vectors).sum(axis=1)[None, :]
    )
    return np.exp(-gamma * np.maximum(d2, 0.0)) @ dual_coef + intercept  # type: ignore[no-any-return]


class SiftSvm(Method):
    """SIFT keypoints classified tumour / non-tumour by an RBF SVM (supervised, needs classes)."""

    name = "sift_svm"
    version = "1"
    description = "Denoised grey → SIFT keypoints → RBF SVM tumour/non-tumour; tumour count"
    outputs = frozenset({"detections"})
    learns = True
    requires = frozenset({"classes"})

    def __init__(
        self,
        denoise_h: float = 10.0,
        mask_training: bool = False,
        contrast_threshold: float = 0.04,
        max_keypoints: int = 0,
        C: float = 1.0,
        gamma: float = 0.0,
        max_train_keypoints: int = 5000,
    ) -> None:
        if denoise_h < 0 or C <= 0 or gamma < 0 or max_keypoints < 0 or max_train_keypoints < 2:
            raise ValueError(
                "sift_svm: need denoise_h >= 0, C > 0, gamma >= 0 (0 = sklearn's 'scale'), "
                "max_keypoints >= 0 (0 = all), max_train_keypoints >= 2"
            )
        self.denoise_h = denoise_h
        self.mask_training = mask_training
        self.contrast_threshold = contrast_threshold
        self.max_keypoints = max_keypoints
        self.C = C
        self.gamma = gamma
        self.max_train_keypoints = max_train_keypoints
        self._svm: dict[str, np.ndarray] | None = None

    def keypoints(self, image: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(points N×2 int row/col, descriptors N×128), one keypoint per distinct pixel."""
        import cv2  # imported where used, so building the registry does not load OpenCV

        grey = grey_uint8(image)
        if self.denoise_h > 0:
            grey = cv2.fastNlMeansDenoising(grey, None, h=float(self.denoise_h))
        sift = cv2.SIFT_create(  # type: ignore[attr-defined]
            nfeatures=self.max_keypoints, contrastThreshold=self.contrast_threshold
        )
        kps, desc = sift.detectAndCompute(grey, None if mask is None else mask.astype(np.uint8) * 255)
        if not kps or desc is None:
            return np.zeros((0, 2), np.int64), np.zeros((0, 128), np.float32)
        h, w = grey.shape
        points = np.array([(round(k.pt[1]), round(k.pt[0])) for k in kps], dtype=np.int64)
        points = np.clip(points, 0, [h - 1, w - 1])
        _, first = np.unique(points, axis=0, return_index=True)
        first = np.sort(first)
        return points[first], desc[first]

    def _training_keypoints(self, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        if sample.classes is None:
            raise ValueError(f"sift_svm: training sample {sample.id!r} has no class map")
        positive = tuple(sample.meta.get("positive_classes", (1,)))
        mask = sample.classes > 0 if self.mask_training else None
        points, desc = self.keypoints(sample.image, mask)
        labels = np.isin(sample.classes[points[:, 0], points[:, 1]], positive).astype(np.int64)
        return desc, labels

    def fit(self, train: Sequence[Sample], validation: Sequence[Sample]) -> None:
        rng = np.random.default_rng(self.context.seed)
        parts = [self._training_keypoints(s) for s in train]
        x = np.concatenate([p[0] for p in parts]).astype(np.float64)
        y = np.concatenate([p[1] for p in parts])
        if len(y) > self.max_train_keypoints:
            keep = np.sort(rng.choice(len(y), self.max_train_keypoints, replace=False))
            x, y = x[keep], y[keep]
        if len(np.unique(y)) < 2:  # one class seen: a constant classifier, recorded as such
            constant = 1.0 if (len(y) and y[0] == 1) else -1.0
            self._svm = {
                "support_vectors": np.zeros((0, 128)),
                "dual_coef": np.zeros(0),
                "intercept": np.array([constant]),
                "gamma": np.array([0.0]),
            }
            return
        from sklearn.svm import SVC  # imported here, so building the registry skips sklearn

        svc = SVC(C=self.C, kernel="rbf", gamma=self.gamma or "scale").fit(x, y)
        self._svm = {
            "support_vectors": np.asarray(svc.support_vectors_, dtype=np.float64),
            "dual_coef": np.asarray(svc.dual_coef_[0], dtype=np.float64),
            "intercept": np.asarray(svc.intercept_, dtype=np.float64),
            "gamma": np.array([float(svc._gamma)]),
        }

    def predict(self, image: np.ndarray) -> Prediction:
        if self._svm is None:
            raise RuntimeError("sift_svm: predict() before fit() or load_state_dict()")
        points, desc = self.keypoints(image)
        s = self._svm
        decision = rbf_decision(
            desc,
            s["support_vectors"],
            s["dual_coef"],
            float(s["intercept"][0]),
            float(s["gamma"][0]),
        )
        labels = (decision > 0).astype(np.int64)
        return Prediction(
            detections={"points": points, "labels": labels},
            extras={"positive_count": int(labels.sum()), "n_keypoints": len(labels)},
        )

    def state_dict(self) -> dict[str, np.ndarray]:
        return {} if self._svm is None else {k: v.copy() for k, v in self._svm.items()}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        missing = [k for k in _STATE_KEYS if k not in state]
        if missing:
            raise ValueError(f"sift_svm: fitted state lacks {', '.join(missing)}; was it saved by sift_svm?")
        self._svm = {k: np.asarray(state[k], dtype=np.float64) for k in _STATE_KEYS}


@hookimpl
def bench_register_methods(register):  # type: ignore[no-untyped-def]
    register(SiftSvm)
