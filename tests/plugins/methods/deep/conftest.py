"""Tiny settings of every deep method, trained once per test session on tiny synthetic data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from harness import Budget, Method, RunContext, Sample
from plugins.datasets.synthetic import Synthetic


@dataclass
class Case:
    name: str
    make: Callable[[], Method]
    steps: int


def tiny_mask_rcnn(**overrides: object) -> Method:
    """A Mask R-CNN small enough to train on 48-pixel images in seconds; ``overrides`` replace
    any of its settings."""
    from plugins.methods.deep import MaskRCNN

    settings: dict[str, object] = {
        "blocks": (1, 1, 1, 1),
        "anchor_size": 8,
        "rois_per_image": 16,
        "proposals": 50,
        "max_detections": 20,
        "batch_size": 2,
        "patch_size": 48,
    }
    return MaskRCNN(**(settings | overrides))  # type: ignore[arg-type]


@pytest.fixture
def make_tiny_mask_rcnn() -> Callable[..., Method]:
    return tiny_mask_rcnn


def _cases() -> list[Case]:
    from plugins.methods.deep import FCNResNet50, SegFormer, UNet, UNetPlusPlus

    common = {"patch_size": 32, "validate_every": 10}
    return [
        Case("unet", lambda: UNet(depth=2, width=8, lr=3e-3, **common), 30),
        Case(
            "unet_plus_plus",
            lambda: UNetPlusPlus(encoder="test_efficientnet", decoder_width=8, lr=3e-3, **common),
            30,
        ),
        Case(
            "segformer",
            lambda: SegFormer(
                hidden_sizes=(16, 32, 64, 128),
                depths=(1, 1, 1, 1),
                heads=(1, 1, 2, 4),
                decoder_hidden_size=32,
                lr=8e-3,
                **common,
            ),
            30,
        ),
        Case("fcn_resnet50", lambda: FCNResNet50(blocks=(1, 1, 1, 1), lr=1e-3, **common), 20),
        Case(
            "mask_rcnn",
            lambda: tiny_mask_rcnn(score_threshold=0.3, lr=1e-3, validate_every=15),
            15,
        ),
    ]


@pytest.fixture(scope="session")
def tiny_data() -> dict[str, list[Sample]]:
    data = Synthetic(n_train=6, n_validation=2, n_test=3, height=48, width=48, seed=1)
    return {split: list(data.samples(split)) for split in ("train", "validation", "test")}


@pytest.fixture(scope="session")
def trained(tiny_data: dict[str, list[Sample]]) -> Callable[[str], tuple[Case, Method]]:
    """Train each case at most once per session (shared by the tests of that model)."""
    cache: dict[str, tuple[Case, Method]] = {}

    def get(name: str) -> tuple[Case, Method]:
        if name not in cache:
            case = next(c for c in _cases() if c.name == name)
            method = case.make()
            method.setup(RunContext(seed=0, budget=Budget("test", max_steps=case.steps)))
            method.fit(tiny_data["train"], tiny_data["validation"])
            cache[name] = (case, method)
        return cache[name]

    return get


CASE_NAMES = ("unet", "unet_plus_plus", "segformer", "fcn_resnet50", "mask_rcnn")


@pytest.fixture(scope="session", params=CASE_NAMES)
def trained_case(request: pytest.FixtureRequest, trained: Callable[[str], tuple[Case, Method]]) -> tuple[Case, Method]:
    """Each case trained in this fixture's set-up, once per session: a test's duration is its
    own, and the tests of one model run together."""
    return trained(request.param)


@pytest.fixture(scope="session")
def untrained() -> Callable[..., Method]:
    return _untrained_copy


def _untrained_copy(case: Case, like: Method | None = None, n_classes: int = 1) -> Method:
    """The same method with a freshly initialised network (seed 0), never trained; ``like``
    (a fitted one) lends its resolved recipe and class count, so both learn the same target."""
    import torch

    method = case.make()
    method.setup(RunContext(seed=0))
    torch.manual_seed(0)
    if like is not None:
        method.resolved_ = dict(like.resolved_ or {})  # type: ignore[attr-defined]
        n_classes = like.num_classes_  # type: ignore[attr-defined]
    method.num_classes_ = 2 if case.name == "mask_rcnn" else n_classes  # type: ignore[attr-defined]
    method.model_ = method.new_model(method.num_classes_).eval()  # type: ignore[attr-defined]
    return method
