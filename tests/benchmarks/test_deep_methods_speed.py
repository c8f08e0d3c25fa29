"""CPU/GPU cost of the deep methods at their default (``standard``) settings: one training
step (default batch of default-size patches, forward + backward + AdamW) and one prediction of
a 512×512 image.  Parameter counts are attached to each benchmark's ``extra_info``.

Run with ``pytest tests/benchmarks/test_deep_methods_speed.py --benchmark-enable``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("timm")
pytest.importorskip("transformers")

from harness import RunContext
from plugins.datasets.synthetic import Synthetic
from plugins.methods.deep import METHODS
from plugins.methods.deep.augment import Augment
from plugins.methods.deep.data import TrainingSet
from plugins.methods.deep.engine import resolve_device, seeded


def _prepared(cls: type) -> tuple[Any, Any, Any]:
    method = cls()
    method.setup(RunContext(seed=0, device="auto"))
    device = resolve_device("auto")
    with seeded(0):
        method.num_classes_ = 2 if cls.name == "mask_rcnn" else 1
        model = method.new_model(method.num_classes_).to(device)
    return method, model, device


@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.name)
def test_training_step(benchmark, cls) -> None:  # type: ignore[no-untyped-def]
    if benchmark.disabled:  # seconds per step on a CPU
        pytest.skip("benchmark: run with --benchmark-enable")
    method, model, device = _prepared(cls)
    data = Synthetic(n_train=2, height=522, width=775, n_objects=40, radius_min=8, radius_max=30)
    training = TrainingSet.from_samples(list(data.samples("train")), method.target)
    optimizer = torch.optim.AdamW(model.parameters(), lr=method.lr)
    rng = np.random.default_rng(0)
    model.train()

    def step() -> None:
        patches = training.draw(rng, method.batch_size, method.patch_size, Augment())
        loss = method.batch_loss(model, patches, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    benchmark.extra_info["parameters"] = sum(p.numel() for p in model.parameters())
    benchmark.extra_info["batch"] = f"{method.batch_size}x{method.patch_size}^2"
    benchmark.pedantic(step, rounds=3, warmup_rounds=1, iterations=1)


@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.name)
def test_predict_512(benchmark, cls) -> None:  # type: ignore[no-untyped-def]
    if benchmark.disabled:
        pytest.skip("benchmark: run with --benchmark-enable")
    method, model, _ = _prepared(cls)
    method.model_ = model.eval()
    image = np.random.default_rng(0).integers(0, 255, (512, 512, 3), dtype=np.uint8)
    benchmark.extra_info["parameters"] = sum(p.numel() for p in model.parameters())
    prediction = benchmark.pedantic(method.predict, args=(image,), rounds=3, warmup_rounds=1)
    assert prediction.instances.shape == (512, 512)
