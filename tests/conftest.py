"""Shared fixtures: a fresh registry per test, a temporary run store, and tiny fake plugins
whose correct results can be worked out by hand."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from harness import Dataset, Method, Prediction, Sample, hookimpl
from harness.plugins import Registry, Source, build_registry
from harness.store import Store

REPO = Path(__file__).resolve().parents[1]
FAKE = Source(entry_point="tests.fakes", distribution="tests", version="0")
SHARED_DATA = REPO.parent / "shared" / "datasets"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--all-plugins",
        action="store_true",
        help="conformance sweep over every installed plugin, not only segbench's own",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Use the real dataset copies beside the checkout (as in CI) unless BENCH_DATA is set."""
    import os

    if "BENCH_DATA" not in os.environ and SHARED_DATA.is_dir():
        os.environ["BENCH_DATA"] = str(SHARED_DATA)


class Squares(Dataset):
    """Images that carry their own labels: channel 0 holds the instance id.

    Split ``test`` has two 10×10 images: ``a`` with one 4×4 square (id 3) and ``b`` with two
    2×2 squares (ids 5 and 300 % 256 = 44).  ``train`` has one image like ``a``.
    """

    name = "squares"
    license = "CC0-1.0"
    citation = "test fixture"
    splits = ("train", "test")
    eval_splits = ("test",)

    def __init__(self, broken: str = "") -> None:
        self.broken = broken

    def sample_ids(self, split: str) -> list[str]:
        self._check_split(split)
        return ["t"] if split == "train" else ["a", "b"]

    def load(self, split: str, sample_id: str) -> Sample:
        if sample_id == self.broken:
            from harness import DataError

            raise DataError(f"squares: {sample_id}.png is truncated")
        labels = np.zeros((10, 10), dtype=np.int32)
        if sample_id in ("a", "t"):
            labels[2:6, 2:6] = 3
        else:
            labels[0:2, 0:2] = 5
            labels[7:9, 7:9] = 44
        image = np.zeros((10, 10, 3), dtype=np.uint8)
        image[..., 0] = labels
        return Sample(id=sample_id, image=image, instances=labels)


class Decode(Method):
    """Reads the labels back out of the image: a perfect prediction."""

    name = "decode"
    outputs = frozenset({"foreground", "instances"})

    def __init__(self, shift: int = 0) -> None:
        self.shift = shift

    def predict(self, image: np.ndarray) -> Prediction:
        labels = np.roll(image[..., 0].astype(np.int32), self.shift, axis=1)
        return Prediction(instances=labels)


class Crash(Method):
    name = "crash"

    def __init__(self) -> None:
        pass

    def predict(self, image: np.ndarray) -> Prediction:
        raise RuntimeError("model exploded")


class Sleepy(Method):
    name = "sleepy"

    def __init__(self, seconds: float = 5.0) -> None:
        self.seconds = seconds

    def predict(self, image: np.ndarray) -> Prediction:
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            pass
        return Prediction(instances=np.zeros(image.shape[:2], dtype=np.int32))


class NeedsClasses(Decode):
    name = "needs-classes"
    requires = frozenset({"classes"})


class LearnedThreshold(Method):
    """Learns the smallest foreground value of channel 0 seen in training."""

    name = "learned-threshold"
    learns = True
    outputs = frozenset({"foreground"})

    def __init__(self) -> None:
        self.level = np.array([255.0])

    def fit(self, train, validation):  # type: ignore[no-untyped-def]
        self.level = np.array([float(min(s.image[..., 0][s.instances > 0].min() for s in train))])

    def predict(self, image: np.ndarray) -> Prediction:
        return Prediction(foreground=image[..., 0] >= self.level[0])

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"level": self.level}

    def load_state_dict(self, state):  # type: ignore[no-untyped-def]
        self.level = np.asarray(state["level"], dtype=float)


class FakePlugin:
    @hookimpl
    def bench_register_datasets(self, register):  # type: ignore[no-untyped-def]
        register(Squares)

    @hookimpl
    def bench_register_methods(self, register):  # type: ignore[no-untyped-def]
        for cls in (Decode, Crash, Sleepy, NeedsClasses, LearnedThreshold):
            register(cls)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    """Installed plugins plus the fakes above (plugin selection variables cleared)."""
    monkeypatch.delenv("BENCH_PLUGINS", raising=False)
    monkeypatch.delenv("BENCH_DISABLE_PLUGINS", raising=False)
    return build_registry(extra_plugins=[(FakePlugin(), FAKE)], warn=False)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "runs")
