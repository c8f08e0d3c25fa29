"""Typed results: :class:`CellRecord` (one per cell), :class:`ImageResult` (one per evaluated
image) and :class:`Status`, the one vocabulary both use.

Records cross process and machine boundaries as JSON (``to_json`` / ``from_json``, with a
schema version), like a test report travelling between test-runner processes.  ``from_json``
checks types and raises :class:`RecordError` naming the field, which the store reports as
damage.  A :class:`CellRecord` is also a read-only mapping of its JSON form
(``record["status"]``, ``record.get("fit_s")``), so the fields that are not modelled
(timings, memory, provenance, split values) stay reachable and tables can read records as
data.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

#: Version of the JSON written for records (3: cells name their predict stage).
SCHEMA_VERSION = 3


class Status(str, enum.Enum):
    """Status of a cell or an image.

    Cells end ``done``, ``skipped`` (the method does not apply to the dataset) or ``error``;
    images are ``ok`` (every metric scored), ``partial`` (some metrics failed) or ``error``
    (loading or prediction failed)."""

    DONE = "done"
    SKIPPED = "skipped"
    ERROR = "error"
    OK = "ok"
    PARTIAL = "partial"

    def __str__(self) -> str:
        return self.value

    @property
    def finished(self) -> bool:
        """A cell that need not run again."""
        return self in (Status.DONE, Status.SKIPPED)


CELL_STATUSES = frozenset({Status.DONE, Status.SKIPPED, Status.ERROR})
IMAGE_STATUSES = frozenset({Status.OK, Status.PARTIAL, Status.ERROR})


class RecordError(ValueError):
    """A record whose JSON does not have the expected fields and types."""


def _status(value: Any, allowed: frozenset[Status], what: str) -> Status:
    try:
        status = Status(value)
    except ValueError:
        raise RecordError(f"{what}: status {value!r} is not one of {', '.join(sorted(s.value for s in allowed))}") from None
    if status not in allowed:
        raise RecordError(f"{what}: status {status.value!r} is not one of {', '.join(sorted(s.value for s in allowed))}")
    return status


def _need(data: Mapping[str, Any], name: str, types: type | tuple[type, ...], what: str) -> Any:
    if name not in data:
        raise RecordError(f"{what}: no {name!r}")
    value = data[name]
    if not isinstance(value, types) or isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise RecordError(f"{what}: {name!r} is {type(value).__name__}, expected "
                          f"{' or '.join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))}")
    return value


class _JsonMapping(Mapping[str, Any]):
    """Read-only mapping access to a record's JSON form."""

    def to_json(self) -> dict[str, Any]:  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    def _json(self) -> dict[str, Any]:
        cached = self.__dict__.get("_cached_json")
        if cached is None:
            cached = self.to_json()
            object.__setattr__(self, "_cached_json", cached)
        return cached  # type: ignore[no-any-return]

    def __getitem__(self, key: str) -> Any:
        return self._json()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._json())

    def __len__(self) -> int:
        return len(self._json())


@dataclass(frozen=True)
class ImageResult:
    """One evaluated image: per-metric values and sufficient statistics, or what failed."""

    split: str
    sample_id: str
    status: Status
    values: Mapping[str, float] = field(default_factory=dict)
    stats: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    error: str | None = None
    metric_errors: Mapping[str, str] = field(default_factory=dict)
    predict_s: float | None = None
    traceback: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"split": self.split, "sample_id": self.sample_id, "status": self.status.value}
        if self.values or self.status is not Status.ERROR:
            out["values"] = dict(self.values)
            out["stats"] = {k: dict(v) for k, v in self.stats.items()}
        for name in ("error", "predict_s", "traceback"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.metric_errors:
            out["metric_errors"] = dict(self.metric_errors)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImageResult:
        if not isinstance(data, Mapping):
            raise RecordError(f"image row is {type(data).__name__}, expected an object")
        what = f"image {data.get('sample_id')!r}"
        split = _need(data, "split", str, what)
        sample_id = _need(data, "sample_id", str, what)
        status = _status(data.get("status"), IMAGE_STATUSES, what)
        values = data.get("values", {})
        if not isinstance(values, Mapping) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values.values()):
            raise RecordError(f"{what}: 'values' must map metric names to finite numbers")
        stats = data.get("stats", {})
        if not isinstance(stats, Mapping) or not all(isinstance(v, Mapping) for v in stats.values()):
            raise RecordError(f"{what}: 'stats' must map metric names to statistics")
        predict_s = data.get("predict_s")
        if predict_s is not None and (not isinstance(predict_s, (int, float)) or isinstance(predict_s, bool)):
            raise RecordError(f"{what}: 'predict_s' is {type(predict_s).__name__}, expected a number")
        return cls(split=split, sample_id=sample_id, status=status, values=dict(values),
                   stats={k: dict(v) for k, v in stats.items()}, error=data.get("error"),
                   metric_errors=dict(data.get("metric_errors") or {}), predict_s=predict_s,
                   traceback=data.get("traceback"))


@dataclass(frozen=True, eq=True)
class CellRecord(_JsonMapping):
    """One cell's stored result.  The modelled fields are what every consumer relies on; the
    rest of the record (timings, memory, provenance, split values) is kept in ``extra``."""

    key: str
    dataset: str
    method: str
    label: str
    params: Mapping[str, Any]
    seed: int
    status: Status
    metrics: tuple[str, ...] = ()
    eval_splits: tuple[str, ...] = ()
    predict_key: str = ""
    error: str | None = None
    traceback: str | None = None
    schema: int = SCHEMA_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    MODELLED: ClassVar[tuple[str, ...]] = ("key", "dataset", "method", "label", "params", "seed", "status",
                                           "metrics", "eval_splits", "predict_key", "error", "traceback", "schema")

    @property
    def finished(self) -> bool:
        return self.status.finished

    @property
    def splits(self) -> Mapping[str, Any]:
        """Split values as computed when the cell ran (``{split: {metric: {...}}}``)."""
        return self.extra.get("splits", {})  # type: ignore[no-any-return]

    def to_json(self) -> dict[str, Any]:
        out = dict(self.extra)
        out.update(key=self.key, dataset=self.dataset, method=self.method, label=self.label,
                   params=dict(self.params), seed=self.seed, status=self.status.value,
                   metrics=list(self.metrics), eval_splits=list(self.eval_splits), schema=self.schema)
        if self.predict_key:
            out["predict_key"] = self.predict_key
        for name in ("error", "traceback"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CellRecord:
        if not isinstance(data, Mapping):
            raise RecordError(f"cell record is {type(data).__name__}, expected an object")
        what = f"cell {data.get('key')!r}"
        schema = data.get("schema", 1)
        if not isinstance(schema, int) or isinstance(schema, bool) or schema > SCHEMA_VERSION:
            raise RecordError(f"{what}: schema {schema!r}; this segbench reads schemas 1 to {SCHEMA_VERSION} "
                              "(upgrade segbench to read newer records)")
        status = _status(data.get("status"), CELL_STATUSES, what)
        seed = _need(data, "seed", int, what)
        params = data.get("params", {})
        if not isinstance(params, Mapping):
            raise RecordError(f"{what}: 'params' is {type(params).__name__}, expected an object")
        metrics, splits = data.get("metrics", []), data.get("eval_splits", [])
        if not isinstance(metrics, list) or not isinstance(splits, list):
            raise RecordError(f"{what}: 'metrics' and 'eval_splits' must be lists")
        extra = {k: v for k, v in data.items() if k not in cls.MODELLED}
        return cls(key=_need(data, "key", str, what), dataset=_need(data, "dataset", str, what),
                   method=_need(data, "method", str, what), label=str(data.get("label") or data["method"]),
                   params=dict(params), seed=seed, status=status, metrics=tuple(metrics), eval_splits=tuple(splits),
                   predict_key=str(data.get("predict_key") or ""), error=data.get("error"),
                   traceback=data.get("traceback"), schema=schema, extra=extra)

    def replace(self, **changes: Any) -> CellRecord:
        """A copy with modelled fields or ``extra`` entries changed (records are immutable)."""
        modelled = {k: v for k, v in changes.items() if k in {f.name for f in fields(self)}}
        rest = {k: v for k, v in changes.items() if k not in modelled}
        data = {**{f.name: getattr(self, f.name) for f in fields(self)}, **modelled}
        data["extra"] = {**self.extra, **rest}
        return CellRecord(**data)
