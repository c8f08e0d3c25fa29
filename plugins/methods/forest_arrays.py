"""Random forests as plain arrays: packing scikit-learn trees, and evaluating them with numpy.

A fitted :class:`sklearn.ensemble.RandomForestClassifier` is not arrays, and pickle is not an
option for stored state.  :func:`pack_forests` concatenates every tree's nodes (children,
feature, threshold, class fractions) into flat arrays; :func:`forest_votes` walks all trees
level by level over a flat feature array, so the same code serves a feature matrix and an image
whose features are looked up by offset (no per-pixel patch matrix is ever built).

Nodes are renumbered breadth-first so that the two children of a node are adjacent: the right
child is ``left + 1`` and one step is ``node = left[node] + (value > threshold[node])``.  Leaves
point to themselves with threshold +inf, so a sample that reached its leaf stays there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PACKED_KEYS = ("left", "feature", "threshold", "proba", "roots", "tree_forest", "classes", "depth")


def _breadth_first(children_left: np.ndarray, children_right: np.ndarray) -> np.ndarray:
    """New id of every node such that the children of each internal node are adjacent."""
    new_id = np.empty(len(children_left), dtype=np.int64)
    new_id[0] = 0
    queue, nxt = [0], 1
    for node in queue:  # the list grows while iterated: a breadth-first walk
        if children_left[node] != -1:
            for child in (children_left[node], children_right[node]):
                new_id[child] = nxt
                nxt += 1
                queue.append(int(child))
    return new_id


def pack_forests(forests: Sequence[object], classes: np.ndarray) -> dict[str, np.ndarray]:
    """Flatten fitted sklearn forests; ``classes`` are the global labels (class-fraction columns)."""
    classes = np.asarray(classes)
    left, feature, threshold, proba, roots, tree_forest = [], [], [], [], [], []
    offset = 0
    depth = 0
    for j, forest in enumerate(forests):
        columns = np.searchsorted(classes, forest.classes_)  # type: ignore[attr-defined]
        for estimator in forest.estimators_:  # type: ignore[attr-defined]
            tree = estimator.tree_
            n = tree.node_count
            new = _breadth_first(tree.children_left, tree.children_right)
            order = np.argsort(new)  # old id of each new position
            leaf = tree.children_left[order] == -1
            child = np.where(leaf, 0, tree.children_left[order])
            left.append(np.where(leaf, np.arange(n), new[child]) + offset)
            feature.append(np.where(leaf, 0, tree.feature[order]))
            threshold.append(np.where(leaf, np.inf, tree.threshold[order]))
            values = tree.value[order, 0, :]
            fractions = np.zeros((n, len(classes)))
            fractions[:, columns] = values / values.sum(axis=1, keepdims=True)
            proba.append(fractions)
            roots.append(offset)
            tree_forest.append(j)
            depth = max(depth, int(tree.max_depth))
            offset += n
    return {
        "left": np.concatenate(left).astype(np.int64),
        "feature": np.concatenate(feature).astype(np.int64),
        "threshold": np.concatenate(threshold).astype(np.float64),
        "proba": np.concatenate(proba).astype(np.float64),
        "roots": np.asarray(roots, dtype=np.int64),
        "tree_forest": np.asarray(tree_forest, dtype=np.int64),
        "classes": classes.astype(np.int64),
        "depth": np.asarray([depth], dtype=np.int64),
    }


def check_packed(packed: dict[str, np.ndarray], where: str) -> None:
    missing = [k for k in PACKED_KEYS if k not in packed]
    if missing:
        raise ValueError(f"{where}: fitted state lacks {', '.join(missing)}; was it saved by this method?")


def float32_below(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 <= each float64 threshold.

    For a float32 value v, ``v > t`` (compared in float64, as scikit-learn does) holds exactly
    when ``v > float32_below(t)``: no float32 lies strictly between the two.
    """
    t32 = threshold.astype(np.float32)
    above = t32.astype(np.float64) > threshold
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return t32


def leaves(packed: dict[str, np.ndarray], flat: np.ndarray, base: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Leaf node (global index) of every tree (rows) for every sample (columns).

    Feature ``f`` of sample ``i`` is ``flat[base[i] + offsets[f]]``.
    """
    if flat.dtype != np.float32:
        raise TypeError(f"forest features must be float32 (as trained), got {flat.dtype}")
    index = np.int32 if flat.size < 2**31 else np.int64
    node_offset = offsets[packed["feature"]].astype(index)  # per node: where its feature sits
    threshold = float32_below(packed["threshold"])
    left = packed["left"].astype(np.int32)
    base = base.astype(index)
    nodes = np.repeat(packed["roots"].astype(np.int32)[:, None], len(base), axis=1)
    for _ in range(int(packed["depth"][0])):
        where = np.take(node_offset, nodes)
        where += base
        go_right = np.take(flat, where) > np.take(threshold, nodes)
        nodes = np.take(left, nodes)
        nodes += go_right
    return nodes


def forest_probabilities(
    packed: dict[str, np.ndarray], flat: np.ndarray, base: np.ndarray, offsets: np.ndarray
) -> np.ndarray:
    """F×N×C class probabilities of each forest (mean of its trees' leaf fractions)."""
    nodes = leaves(packed, flat, base, offsets)
    n_forests = int(packed["tree_forest"].max()) + 1
    out = np.zeros((n_forests, len(base), len(packed["classes"])))
    for j in range(n_forests):
        trees = np.flatnonzero(packed["tree_forest"] == j)
        out[j] = packed["proba"][nodes[trees]].mean(axis=0)
    return out


def forest_votes(
    packed: dict[str, np.ndarray], flat: np.ndarray, base: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(majority-vote class label per sample, mean class probabilities N×C over forests).

    Each forest votes for its most probable class; ties between classes with equal votes go to
    the one with the higher mean probability.
    """
    probs = forest_probabilities(packed, flat, base, offsets)
    n_classes = probs.shape[2]
    votes = np.zeros(probs.shape[1:])
    winners = probs.argmax(axis=2)
    for c in range(n_classes):
        votes[:, c] = (winners == c).sum(axis=0)
    mean = probs.mean(axis=0)
    label_index = np.argmax(votes + 1e-6 * mean, axis=1)
    return packed["classes"][label_index], mean


def matrix_lookup(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flat, base, offsets) for an N×F feature matrix (as sklearn sees it: float32)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, f = x.shape
    return x.ravel(), np.arange(n, dtype=np.int64) * f, np.arange(f, dtype=np.int64)
