"""Detection metrics for keypoint classifiers: precision, recall, F1, accuracy, balanced
accuracy over classified points, counts pooled over the split.

Convention: ``Prediction.detections = {"points": N×2 int (row, col), "labels": N int}`` with
1 = positive.  A point's true label is 1 when ``reference.classes[row, col]`` is in
``reference.meta.get("positive_classes", (1,))``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from harness import ImagePair, MetricSpec, hookimpl
from plugins.metrics.matching import ratio, require_images

KEYS = ("tp", "fp", "tn", "fn")


def detection_statistics(
    *,
    prediction: Mapping[str, np.ndarray],
    reference: np.ndarray,
    positive_classes: Iterable[int] = (1,),
) -> dict[str, float]:
    """Confusion counts of the predicted point labels against the class map ``reference``."""
    classes = np.asarray(reference)
    points = np.asarray(prediction.get("points", np.zeros((0, 2))), dtype=np.int64).reshape(-1, 2)
    labels = np.asarray(prediction.get("labels", np.zeros(0)), dtype=np.int64).ravel()
    if labels.size != points.shape[0]:
        raise ValueError(f"detections have {points.shape[0]} points but {labels.size} labels")
    h, w = classes.shape
    outside = (points[:, 0] < 0) | (points[:, 0] >= h) | (points[:, 1] < 0) | (points[:, 1] >= w)
    if outside.any():
        raise ValueError(
            f"{int(outside.sum())} detection point(s) lie outside the {h}×{w} image "
            "(points are (row, col))"
        )
    truth = np.isin(classes[points[:, 0], points[:, 1]], list(positive_classes))
    pred = labels == 1
    return {
        "tp": float(np.sum(pred & truth)),
        "fp": float(np.sum(pred & ~truth)),
        "tn": float(np.sum(~pred & ~truth)),
        "fn": float(np.sum(~pred & truth)),
    }


def detection_scores(stats: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """All five scores from summed counts.

    A ratio whose denominator is 0 is 1.0 when there is nothing of that kind to get wrong
    (no predicted positive and no true positive point for precision; no true positive for
    recall; no true negative for specificity) — never NaN.  Balanced accuracy is the mean of
    the recall of the positives and of the negatives over the kinds present; no points at all
    -> every score 1.0.
    """
    tp, fp, tn, fn = (sum(s[k] for s in stats) for k in KEYS)
    precision = ratio(tp, tp + fp, empty=1.0 if tp + fn == 0 else 0.0)
    recall = ratio(tp, tp + fn, empty=1.0)
    f1 = ratio(2 * tp, 2 * tp + fp + fn, empty=1.0)
    accuracy = ratio(tp + tn, tp + fp + tn + fn, empty=1.0)
    present = [x for x, n in ((recall, tp + fn), (ratio(tn, tn + fp, empty=1.0), tn + fp)) if n]
    balanced = float(np.mean(present)) if present else 1.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": accuracy,
        "balanced_accuracy": balanced,
    }


def _stats(pair: ImagePair) -> dict[str, float]:
    def compute() -> dict[str, float]:
        det, classes = pair.prediction.detections, pair.reference.classes
        if det is None or classes is None:
            raise ValueError(
                f"sample {pair.reference.id!r}: detection metrics need predicted "
                "detections and a reference class map"
            )
        positive = pair.reference.meta.get("positive_classes", (1,))
        return detection_statistics(prediction=det, reference=classes, positive_classes=positive)

    return pair.cached("detection.counts", compute)  # type: ignore[no-any-return]


def _reducer(score: str):  # type: ignore[no-untyped-def]
    def reduce(stats: Sequence[Mapping[str, float]]) -> dict[str, float]:
        require_images(stats)
        return {"value": detection_scores(stats)[score]}

    return reduce


def specs() -> list[MetricSpec]:
    out = []
    for score in ("precision", "recall", "f1", "accuracy", "balanced_accuracy"):
        out.append(
            MetricSpec(
                name=f"detection_{score}",
                higher_is_better=True,
                statistics=_stats,
                reduce=_reducer(score),
                level="split",
                requires=frozenset({"detections"}),
                reference_requires=frozenset({"classes"}),
                description=f"{score.replace('_', ' ').capitalize()} of classified keypoints, "
                "counts pooled over the split",
            )
        )
    return out


@hookimpl
def bench_register_metrics(register):  # type: ignore[no-untyped-def]
    for spec in specs():
        register(spec)
