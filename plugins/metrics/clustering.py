"""Cluster Dice: scores an unsupervised cluster map against reference classes.

Cluster labels carry no meaning, so clusters are assigned one-to-one to reference classes
maximising the total Dice (Hungarian); each surplus cluster or class scores 0, and the value
is the mean Dice over the larger of the two label sets.  The assignment is reported.
"""

from __future__ import annotations

import numpy as np

from harness import ImagePair, MetricSpec, hookimpl
from plugins.metrics.matching import hungarian
from plugins.metrics.pixel import paired_arrays


def cluster_dice(*, prediction: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Cluster Dice of one image.

    ``prediction``: cluster map (every value, 0 included, is a cluster); ``reference``: class
    map (every value, background 0 included, is a class).  Returns ``value`` and, for each
    cluster k assigned to class c, ``cluster_k`` = c (``-1`` when k is surplus).
    Higher is better, range [0, 1]; an image has at least one cluster and one class, so
    there is no empty case.  Image level.
    """
    p, r = paired_arrays(prediction, reference)
    if p.size == 0:
        raise ValueError("cluster_dice of an empty image is undefined")
    clusters, p_idx = np.unique(p.ravel(), return_inverse=True)
    classes, r_idx = np.unique(r.ravel(), return_inverse=True)
    nk, nc = clusters.size, classes.size
    table = np.bincount(p_idx * nc + r_idx, minlength=nk * nc).reshape(nk, nc)
    sizes = table.sum(axis=1)[:, None] + table.sum(axis=0)[None, :]
    dice = 2.0 * table / sizes
    rows, cols = hungarian(dice)
    out = {"value": float(dice[rows, cols].sum() / max(nk, nc))}
    assigned = dict(zip(rows.tolist(), cols.tolist()))
    for k, label in enumerate(clusters.tolist()):
        out[f"cluster_{label}"] = float(classes[assigned[k]]) if k in assigned else -1.0
    return out


def _stats(pair: ImagePair) -> dict[str, float]:
    clusters = pair.prediction.clusters
    if clusters is None:
        raise ValueError(f"sample {pair.reference.id!r}: cluster_dice needs a cluster map")
    ref = pair.reference
    truth = ref.classes if ref.classes is not None else ref.foreground.astype(np.int32)
    clusters, truth = np.asarray(clusters), np.asarray(truth)
    if ref.ignore is not None:
        keep = ~np.asarray(ref.ignore, dtype=bool)
        clusters, truth = clusters[keep], truth[keep]
    return cluster_dice(prediction=clusters, reference=truth)


CLUSTER_DICE = MetricSpec(
    name="cluster_dice",
    higher_is_better=True,
    statistics=_stats,
    requires=frozenset({"clusters"}),
    reference_requires=frozenset({"foreground"}),
    description="Mean Dice after a one-to-one Hungarian assignment of clusters to reference "
    "classes (or foreground/background); mean over images",
)


@hookimpl
def bench_register_metrics(register):  # type: ignore[no-untyped-def]
    register(CLUSTER_DICE)
