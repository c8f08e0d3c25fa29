"""Conformance kit: checks every plugin must pass, for our tests and third parties' CI.

Granular ``check_dataset``, ``check_method`` and ``check_metric`` raise ``AssertionError`` with
a message naming the plugin and the broken rule; ``plugin_params`` builds pytest parameters
over the registered plugins of a kind (of one distribution, or all installed)::

    import pytest
    from harness.testing import check_method, plugin_params

    @pytest.mark.parametrize("entry", plugin_params("method", distribution="my-plugins"))
    def test_method_conforms(entry):
        check_method(entry.obj)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from harness.plugins import Entry, Kind, Registry, build_registry
from harness.runner import check_prediction
from harness.types import (
    CAPABILITIES,
    Budget,
    Dataset,
    ImagePair,
    Method,
    MetricSpec,
    Prediction,
    RunContext,
    Sample,
)

# steps only: a wall-clock cap would make the determinism check depend on machine load
TINY_BUDGET = Budget("conformance", max_steps=2, max_seconds=None)


def _fail(plugin: str, rule: str) -> AssertionError:
    return AssertionError(f"{plugin}: {rule}")


def plugin_params(kind: Kind, registry: Registry | None = None, distribution: str | None = None) -> list[Any]:
    """pytest parameters (id = plugin name) over the registered plugins of ``kind``.

    ``distribution`` keeps only the plugins that package provides (a plugin package's own CI
    passes its distribution name, so another installed plugin cannot turn it red); ``None``
    sweeps every installed plugin."""
    import pytest

    registry = registry or build_registry(warn=False)
    entries = sorted(
        (e for e in registry.table(kind).values() if distribution is None or e.source.distribution == distribution),
        key=lambda e: e.name,
    )
    return [pytest.param(e, id=e.name) for e in entries]


def _check_params(cls: type[Dataset | Method], instance: Any, label: str) -> None:
    for name in cls.param_names():
        if not hasattr(instance, name):
            raise _fail(label, f"parameter {name!r} is not stored as attribute {name!r}, so it cannot be recorded")
    params = instance.get_params()
    try:
        json.dumps(params)
    except TypeError as exc:
        raise _fail(label, f"parameters must be JSON-serialisable to be recorded: {exc}") from None
    again = cls(**params).get_params()
    if again != params:
        raise _fail(label, f"get_params() does not round-trip through __init__: {params} != {again}")


def check_dataset(dataset: Dataset, max_samples: int = 2) -> None:
    """Metadata is complete, splits are consistent, and samples have the contracted arrays."""
    label = f"dataset {dataset.name!r}"
    cls = type(dataset)
    if not dataset.splits:
        raise _fail(label, "declares no splits")
    if not set(dataset.eval_splits) <= set(dataset.splits):
        raise _fail(label, f"eval_splits {dataset.eval_splits} are not all in splits {dataset.splits}")
    if dataset.train_split is not None and dataset.train_split not in dataset.splits:
        raise _fail(label, f"train_split {dataset.train_split!r} is not a split")
    if not set(dataset.provides) <= CAPABILITIES:
        raise _fail(label, f"provides unknown capabilities {set(dataset.provides) - CAPABILITIES}")
    for attr in ("license", "citation", "version"):
        if not getattr(dataset, attr):
            raise _fail(label, f"has no {attr}")
    _check_params(cls, dataset, label)
    try:
        dataset.sample_ids("no-such-split")
    except KeyError:
        pass
    else:
        raise _fail(label, "sample_ids() of an unknown split must raise KeyError")
    for split in dataset.splits:
        ids = dataset.sample_ids(split)
        if len(set(ids)) != len(ids) or not all(isinstance(i, str) for i in ids):
            raise _fail(label, f"split {split!r}: sample ids must be unique strings")
        for sid in ids[:max_samples]:
            _check_sample(dataset, split, sid, label)


def _check_sample(dataset: Dataset, split: str, sid: str, label: str) -> None:
    sample = dataset.load(split, sid)
    where = f"{label}, {split}/{sid}"
    img = sample.image
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise _fail(where, f"image must be H×W×3 uint8, got {img.shape} {img.dtype}")
    hw = img.shape[:2]
    if "instances" in dataset.provides:
        inst = sample.instances
        if inst is None or inst.shape != hw or inst.dtype != np.int32 or inst.min() < 0:
            raise _fail(where, "instances must be H×W int32 ≥ 0 matching the image")
    classes = sample.classes
    bad_classes = classes is None or classes.shape != hw or not np.issubdtype(classes.dtype, np.integer)
    if "classes" in dataset.provides and bad_classes:
        raise _fail(where, "classes must be an H×W integer map matching the image")
    if sample.ignore is not None and (sample.ignore.shape != hw or sample.ignore.dtype != bool):
        raise _fail(where, "ignore must be an H×W bool mask")
    again = dataset.load(split, sid)
    if not np.array_equal(again.image, img):
        raise _fail(where, "loading the same sample twice gives different images")


def _tiny_dataset(method_cls: type[Method]) -> Dataset:
    from plugins.datasets.synthetic import Synthetic

    n_classes = 2 if "classes" in method_cls.requires or "classes" in method_cls.outputs else 0
    return Synthetic(
        n_train=3,
        n_validation=1,
        n_test=2,
        height=48,
        width=48,
        n_objects=5,
        radius_min=3.0,
        radius_max=6.0,
        n_classes=n_classes,
        seed=7,
    )


def _fitted(method_cls: type[Method], params: Mapping[str, Any], dataset: Dataset, seed: int) -> Method:
    method = method_cls(**params)
    method.setup(RunContext(seed=seed, device="cpu", budget=TINY_BUDGET))
    if method.learns:
        train = list(dataset.samples(dataset.train_split or "train"))
        validation = list(dataset.samples("validation")) if "validation" in dataset.splits else []
        method.fit(train, validation)
    return method


def _same(a: Prediction, b: Prediction) -> bool:
    for name in ("foreground", "instances", "classes", "clusters"):
        x, y = getattr(a, name), getattr(b, name)
        if (x is None) != (y is None) or (x is not None and not np.array_equal(x, y)):
            return False
    return True


def check_method(
    method_cls: type[Method], params: Mapping[str, Any] | None = None, dataset: Dataset | None = None
) -> None:
    """Parameters are recorded, predictions match the declared outputs and are deterministic
    under a seed, and fitted state round-trips through ``state_dict``.  ``params`` defaults to
    the method's ``conformance_params``."""
    params = dict(method_cls.conformance_params if params is None else params)
    method = method_cls(**params)
    label = f"method {method.name!r}"
    _check_params(method_cls, method, label)
    if not set(method.outputs) <= CAPABILITIES:
        raise _fail(label, f"outputs unknown capabilities {set(method.outputs) - CAPABILITIES}")
    dataset = dataset or _tiny_dataset(method_cls)
    reason = method.not_applicable(dataset)
    if reason is not None:
        raise _fail(label, f"not applicable to the conformance dataset: {reason}")
    fitted = _fitted(method_cls, params, dataset, seed=3)
    samples = list(dataset.samples(dataset.eval_splits[0]))
    predictions = [fitted.predict(s.image) for s in samples]
    for sample, pred in zip(samples, predictions, strict=True):
        try:
            check_prediction(pred, sample, method.outputs, method.name)
        except (TypeError, ValueError) as exc:
            raise _fail(label, str(exc)) from None
        if pred.instances is not None and (
            not np.issubdtype(pred.instances.dtype, np.integer) or pred.instances.min() < 0
        ):
            raise _fail(label, "instances must be a non-negative integer map")
    again = _fitted(method_cls, params, dataset, seed=3)
    if not all(_same(p, again.predict(s.image)) for s, p in zip(samples, predictions, strict=False)):
        raise _fail(label, "two runs with the same seed give different predictions")
    state = fitted.state_dict()
    if not all(isinstance(v, np.ndarray) for v in state.values()):
        raise _fail(label, "state_dict() values must be numpy arrays (they are saved with safetensors)")
    if method.learns:
        fresh = method_cls(**params)
        fresh.setup(RunContext(seed=3, device="cpu", budget=TINY_BUDGET))
        fresh.load_state_dict(state)
        if not all(_same(p, fresh.predict(s.image)) for s, p in zip(samples, predictions, strict=False)):
            raise _fail(label, "a model restored from state_dict() predicts differently")


def _pair_from_reference(sample: Sample) -> ImagePair:
    """A prediction that equals the reference in every capability."""
    fg = sample.foreground
    points, labels = [], []
    if sample.instances is not None:
        for obj in np.unique(sample.instances[sample.instances > 0]):
            rr, cc = np.nonzero(sample.instances == obj)
            r, c = int(rr[len(rr) // 2]), int(cc[len(cc) // 2])
            points.append((r, c))
            if sample.classes is not None:
                labels.append(int(sample.classes[r, c] in sample.meta.get("positive_classes", (1,))))
    detections = {
        "points": np.asarray(points, dtype=np.int64).reshape(-1, 2),
        "labels": np.asarray(labels, dtype=np.int64),
    }
    pred = Prediction(
        foreground=fg,
        instances=sample.instances,
        classes=sample.classes,
        clusters=sample.classes if sample.classes is not None else fg.astype(np.int32),
        detections=detections if sample.classes is not None else None,
    )
    return ImagePair(pred, sample)


def check_metric(spec: MetricSpec, perfect: bool = True) -> None:
    """Metadata is sane; statistics are finite floats; values stay in range; identical inputs
    score the best value (``perfect``); the split reducer works on stored statistics."""
    from plugins.datasets.synthetic import Synthetic

    label = f"metric {spec.name!r}"
    if spec.level not in ("image", "split"):
        raise _fail(label, f"level must be 'image' or 'split', got {spec.level!r}")
    lo, hi = spec.range
    if not lo < hi:
        raise _fail(label, f"range {spec.range} is empty")
    if not set(spec.requires) | set(spec.reference_requires) <= CAPABILITIES:
        raise _fail(label, "requires unknown capabilities")
    dataset = Synthetic(n_test=2, height=48, width=48, n_objects=6, n_classes=2, seed=11)
    all_stats = []
    for sample in dataset.samples("test"):
        pair = _pair_from_reference(sample)
        if not spec.applicable(pair.prediction.provides(), dataset.provides):
            raise _fail(
                label,
                f"requirements {sorted(spec.requires)} / {sorted(spec.reference_requires)} "
                "cannot be met by any prediction and dataset capabilities",
            )
        stats = dict(spec.statistics(pair))
        if not all(isinstance(k, str) for k in stats):
            raise _fail(label, "statistics keys must be strings")
        values = {k: float(v) for k, v in stats.items()}
        if not all(math.isfinite(v) for v in values.values()):
            raise _fail(label, f"non-finite statistics {values}")
        json.dumps(values)
        value = spec.image_value(values)
        if not lo - 1e-9 <= value <= hi + 1e-9:
            raise _fail(label, f"value {value} outside its range {spec.range}")
        best = hi if spec.higher_is_better else lo
        if perfect and not math.isclose(value, best, abs_tol=1e-9):
            raise _fail(label, f"identical prediction and reference score {value}, expected the best value {best}")
        all_stats.append(values)
    split = spec.split_values(all_stats)
    if "value" not in split or not lo - 1e-9 <= split["value"] <= hi + 1e-9:
        raise _fail(label, f"split value {split} missing or outside {spec.range}")


__all__ = ["TINY_BUDGET", "Entry", "check_dataset", "check_method", "check_metric", "plugin_params"]
