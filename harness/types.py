"""The data contracts every plugin speaks: samples, predictions, and the three plugin kinds.

A dataset yields :class:`Sample` objects, a method turns an image into a :class:`Prediction`,
and a metric (:class:`MetricSpec`) turns a (prediction, sample) pair into per-image statistics
that a reducer aggregates into one split value.  See ARCHITECTURE.md and METRICS.md.
"""

from __future__ import annotations

import abc
import inspect
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

#: What a dataset can provide as reference, and what a method can output.
#: ``foreground``: a binary mask (any instance or class map implies it);
#: ``instances``: an int32 instance-id map; ``classes``: a class map;
#: ``clusters``: an unsupervised cluster map (methods only); ``detections``: classified points.
CAPABILITIES: frozenset[str] = frozenset(
    {"foreground", "instances", "classes", "clusters", "detections"}
)


def with_implied(capabilities: frozenset[str] | set[str]) -> frozenset[str]:
    """Capabilities plus what they imply: an instance or class map gives a foreground."""
    caps = set(capabilities)
    if caps & {"instances", "classes"}:
        caps.add("foreground")
    return frozenset(caps)


@dataclass(frozen=True)
class Sample:
    """One image of a dataset with its reference annotation.

    ``image`` is H×W×3 uint8 RGB (grayscale sources are expanded); ``instances`` is H×W int32
    (0 = background; ids need not be contiguous and one id may cover several pieces);
    ``classes`` is an optional H×W class map (0 = background); ``meta`` holds patient id,
    grade, source file, pixel spacing and the like.  ``ignore`` is an optional boolean mask of
    pixels excluded from scoring (e.g. outside a field of view).
    """

    id: str
    image: np.ndarray
    instances: np.ndarray | None = None
    classes: np.ndarray | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    ignore: np.ndarray | None = None

    @property
    def foreground(self) -> np.ndarray:
        """Boolean reference foreground: instances > 0, else classes > 0."""
        if self.instances is not None:
            return self.instances > 0
        if self.classes is not None:
            return self.classes > 0
        raise ValueError(f"sample {self.id!r} has no reference annotation")


@dataclass
class Prediction:
    """A method's output for one image; a method fills what it declares in ``outputs``.

    ``foreground`` (bool H×W), ``instances`` (int32 H×W), ``classes`` (int H×W class map),
    ``clusters`` (int H×W unsupervised cluster ids), ``probabilities`` (float H×W or C×H×W),
    ``detections`` (a mapping of arrays, e.g. ``points`` N×2 and ``labels`` N), and ``extras``
    for anything a metric or report may want to inspect.

    The runner checks every prediction (``harness.runner.check_prediction``) and fails the
    image, naming the method and the field, otherwise: ``foreground`` must have dtype
    ``bool`` (a 0/1 integer or float mask is refused rather than guessed at: return
    ``score > threshold``); ``instances``, ``classes`` and ``clusters`` must have an integer
    dtype, ``instances`` and ``classes`` without negative ids; ``probabilities`` must be
    finite (no NaN or inf).
    """

    foreground: np.ndarray | None = None
    instances: np.ndarray | None = None
    classes: np.ndarray | None = None
    clusters: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    detections: Mapping[str, np.ndarray] | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def foreground_mask(self) -> np.ndarray:
        """Boolean foreground from the most direct output available."""
        if self.foreground is not None:
            return np.asarray(self.foreground, dtype=bool)
        if self.instances is not None:
            return self.instances > 0
        if self.classes is not None:
            return self.classes > 0
        raise ValueError("prediction has no foreground, instances or classes")

    def provides(self) -> frozenset[str]:
        return with_implied(
            {
                name
                for name in ("foreground", "instances", "classes", "clusters", "detections")
                if getattr(self, name) is not None
            }
        )


# --------------------------------------------------------------------------------------
# Budgets and the context a method runs in


@dataclass(frozen=True)
class Budget:
    """How much training a learning method may do: optimiser steps and/or wall-clock seconds.

    With ``max_steps`` set, training is defined by its step count (the learning-rate schedule
    follows the steps, so results reproduce across machines) and ``max_seconds`` is only a
    safety cap: a method records ``stopped_by="max_seconds"`` when the cap ends training early.
    Without ``max_steps`` the seconds alone define the budget.
    """

    name: str
    max_steps: int | None = None
    max_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "max_steps": self.max_steps, "max_seconds": self.max_seconds}


BUDGETS: dict[str, Budget] = {
    "quick": Budget("quick", max_steps=20, max_seconds=60),
    "standard": Budget("standard", max_steps=2000, max_seconds=180),
    "full": Budget("full", max_steps=40000, max_seconds=None),
    # CPU leaderboards: sized so the five deep methods on GlaS fit in about an hour on two
    # cores (docs/DESIGN.md, "Budgets"); the cap only guards against a much slower machine.
    "long": Budget("long", max_steps=150, max_seconds=1800),
}


@dataclass(frozen=True)
class RunContext:
    """What the harness hands a method before fitting/predicting."""

    seed: int = 0
    device: str = "cpu"
    budget: Budget = BUDGETS["quick"]
    workdir: Path | None = None
    progress: bool = False


# --------------------------------------------------------------------------------------
# Plugin base classes


class Plugin:
    """Shared parameter introspection (scikit-learn's ``get_params`` rule): every parameter is
    an explicit keyword of ``__init__`` stored under the same attribute name."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""

    @classmethod
    def param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        names = []
        for p in sig.parameters.values():
            if p.name == "self":
                continue
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(
                    f"{cls.__name__}.__init__ takes *args/**kwargs; every parameter must be an "
                    "explicit keyword so it can be recorded"
                )
            names.append(p.name)
        return names

    @classmethod
    def param_defaults(cls) -> dict[str, Any]:
        sig = inspect.signature(cls.__init__)
        return {
            p.name: p.default
            for p in sig.parameters.values()
            if p.name != "self" and p.default is not inspect.Parameter.empty
        }

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.param_names()}


class Dataset(Plugin, abc.ABC):
    """A dataset plugin: metadata as class attributes, lazy sample loading.

    Subclasses set ``name``, ``version``, ``provides`` (capabilities of the reference:
    foreground / instances / classes / detections), ``splits``, ``train_split`` (None when the
    dataset has no training data), ``eval_splits``, ``class_names``, ``license``, ``citation``
    and ``primary_metrics`` (what its leaderboard ranks by default), and implement
    :meth:`sample_ids` and :meth:`load`.  ``root`` is the data directory (``None``: the
    plugin's default location).  Missing or malformed files raise :class:`DataError` naming the
    path, what was expected and how to obtain the data.
    """

    # provides and class_names may depend on parameters (e.g. a class map on or off), so an
    # instance may override them; the rest is fixed per class.
    provides: frozenset[str] = frozenset({"foreground", "instances"})
    splits: ClassVar[tuple[str, ...]] = ("train", "test")
    train_split: ClassVar[str | None] = "train"
    eval_splits: ClassVar[tuple[str, ...]] = ("test",)
    class_names: tuple[str, ...] = ("background", "foreground")
    license: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    primary_metrics: ClassVar[tuple[str, ...]] = ("dice", "iou")
    #: Published results packaged with the plugin: name → (file in the plugin package's
    #: ``data`` folder, citation); ``bench leaderboard --reference NAME`` ranks them alongside.
    references: ClassVar[Mapping[str, tuple[str, str]]] = {}

    @abc.abstractmethod
    def sample_ids(self, split: str) -> list[str]:
        """Ids of the samples of ``split``, in a stable order (cheap: no image decoding)."""

    @abc.abstractmethod
    def load(self, split: str, sample_id: str) -> Sample:
        """Read one sample; raise :class:`DataError` naming the file on bad input."""

    def samples(self, split: str) -> Iterator[Sample]:
        """Yield the samples of ``split`` lazily."""
        self._check_split(split)
        for sid in self.sample_ids(split):
            yield self.load(split, sid)

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this dataset's content for cell keys (override to add checksums)."""
        return {
            "name": self.name,
            "version": self.version,
            "params": self.get_params_for_key(),
            "splits": {s: self.sample_ids(s) for s in self.splits},
        }

    def get_params_for_key(self) -> dict[str, Any]:
        """Parameters that change the content (the data root is a location, not content)."""
        return {k: v for k, v in self.get_params().items() if k != "root"}

    def _check_split(self, split: str) -> None:
        if split not in self.splits:
            raise KeyError(
                f"dataset {self.name!r} has no split {split!r}; splits: {', '.join(self.splits)}"
            )


class Method(Plugin, abc.ABC):
    """A method plugin: every parameter an explicit ``__init__`` keyword.

    Class attributes: ``outputs`` (capabilities of its predictions), ``learns`` (whether
    :meth:`fit` trains on the training split), ``requires`` (capabilities the dataset must
    provide, e.g. ``{"classes"}``), ``uses_gpu`` (whether it benefits from a GPU).
    The harness calls :meth:`setup` once, then :meth:`fit` when ``learns``, then
    :meth:`predict` per image.  Fitted state round-trips through :meth:`state_dict` /
    :meth:`load_state_dict` as plain arrays (saved with safetensors, never pickle).
    """

    outputs: ClassVar[frozenset[str]] = frozenset({"foreground", "instances"})
    learns: ClassVar[bool] = False
    requires: ClassVar[frozenset[str]] = frozenset()
    uses_gpu: ClassVar[bool] = False
    #: Packages whose versions can change this method's results; their versions join the key
    #: of its predict stage (the deep methods name torch and torchvision).
    result_packages: ClassVar[tuple[str, ...]] = ()
    #: A learner may leave a JSON-able summary of its fit in ``self.training_`` (steps run,
    #: what stopped it, the selected checkpoint); ``bench run`` records it in the cell.
    #: Images per :meth:`predict_batch` call in ``bench run`` (used only when the method
    #: overrides ``predict_batch``); latency is still reported per image.
    predict_batch_size: ClassVar[int] = 1
    #: Parameters the conformance kit uses instead of the defaults (e.g. a tiny network).
    conformance_params: ClassVar[Mapping[str, Any]] = {}

    context: RunContext = RunContext()

    def setup(self, context: RunContext) -> None:
        """Receive seed, device, budget and work directory before anything else."""
        self.context = context

    def not_applicable(self, dataset: Dataset) -> str | None:
        """A reason when this method cannot run on ``dataset`` (a recorded skip), else None."""
        missing = set(self.requires) - set(dataset.provides)
        if missing:
            return (
                f"method {self.name!r} needs reference {', '.join(sorted(missing))}, which "
                f"dataset {dataset.name!r} does not provide"
            )
        if self.learns and dataset.train_split is None:
            return f"method {self.name!r} learns, and dataset {dataset.name!r} has no training split"
        return None

    def fit(self, train: Sequence[Sample], validation: Sequence[Sample]) -> None:
        """Train on ``train`` (model selection on ``validation``). Only called when ``learns``."""
        raise NotImplementedError(f"method {self.name!r} declares learns=True but has no fit()")

    @abc.abstractmethod
    def predict(self, image: np.ndarray) -> Prediction:
        """Predict one H×W×3 uint8 image."""

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[Prediction]:
        return [self.predict(image) for image in images]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Fitted state as named arrays (empty for methods that do not learn)."""
        return {}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        if state:
            raise NotImplementedError(f"method {self.name!r} cannot load fitted state")


# --------------------------------------------------------------------------------------
# Metrics


@dataclass(frozen=True)
class ImagePair:
    """What a metric sees for one image: the prediction, the reference sample, and a per-pair
    cache so that several metrics share expensive intermediates (e.g. the overlap table)."""

    prediction: Prediction
    reference: Sample
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def spacing(self) -> tuple[float, float]:
        sp = self.reference.meta.get("spacing", (1.0, 1.0))
        return (float(sp[0]), float(sp[1]))

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]


Statistics = Mapping[str, float]


def mean_of_values(stats: Sequence[Statistics]) -> dict[str, float]:
    """Default reducer of image-level metrics: the plain mean of per-image ``value``."""
    if not stats:
        raise ValueError("cannot reduce a split with no images")
    return {"value": float(np.mean([s["value"] for s in stats]))}


@dataclass(frozen=True)
class MetricSpec:
    """A metric plugin record.

    ``statistics(pair)`` returns the per-image sufficient statistics (for image-level metrics
    at least ``value``); ``reduce(list_of_statistics)`` returns the split value under
    ``value`` plus optional named components (e.g. precision, recall).  ``level`` is
    ``"image"`` (split value = mean of per-image values) or ``"split"`` (pooled).
    ``requires``: capabilities the prediction must provide; ``reference_requires``: what the
    dataset's reference must provide.  Statistics are flat ``{str: float}`` mappings of finite
    numbers (they are stored as JSON and reduced later without touching images again).
    """

    name: str
    higher_is_better: bool
    statistics: Callable[[ImagePair], Statistics]
    level: Literal["image", "split"] = "image"
    reduce: Callable[[Sequence[Statistics]], Mapping[str, float]] = mean_of_values
    requires: frozenset[str] = frozenset({"foreground"})
    reference_requires: frozenset[str] = frozenset({"foreground"})
    range: tuple[float, float] = (0.0, 1.0)
    unit: str = ""
    citation: str = ""
    description: str = ""
    version: str = "1"

    def applicable(self, prediction_provides: frozenset[str], reference_provides: frozenset[str]) -> bool:
        return self.requires <= prediction_provides and self.reference_requires <= reference_provides

    def image_value(self, stats: Statistics) -> float:
        """The per-image value: ``value`` when present, else the reduction of this image alone."""
        if "value" in stats:
            return float(stats["value"])
        return float(self.reduce([stats])["value"])

    def split_values(self, stats: Sequence[Statistics]) -> dict[str, float]:
        out = {k: float(v) for k, v in self.reduce(stats).items()}
        bad = [k for k, v in out.items() if math.isnan(v)]
        if bad:
            raise ValueError(f"metric {self.name!r} produced NaN for {', '.join(bad)}")
        return out


class DataError(Exception):
    """Missing or malformed dataset files; the message names the path and the fix."""


class PluginError(Exception):
    """A plugin is unknown, clashes with another, or breaks its contract."""
