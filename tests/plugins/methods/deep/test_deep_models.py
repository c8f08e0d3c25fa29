"""Every deep model: odd image sizes, learning on synthetic nuclei, exact save/load round trip."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("timm")
pytest.importorskip("transformers")

from safetensors.numpy import load_file, save_file

from harness import Method, Sample
from plugins.metrics.pixel import dice

CASE_NAMES = ["unet", "unet_plus_plus", "segformer", "fcn_resnet50", "mask_rcnn"]
Trained = Callable[[str], tuple[Any, Method]]


def mean_dice(method: Method, samples: list[Sample]) -> float:
    predictions = method.predict_batch([s.image for s in samples])
    scores = [
        dice(prediction=p.foreground_mask(), reference=s.foreground)
        for p, s in zip(predictions, samples)
    ]
    return float(np.mean(scores))


@pytest.mark.parametrize("name", CASE_NAMES)
def test_odd_sizes_give_full_size_outputs(name: str, trained: Trained) -> None:
    _, method = trained(name)
    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 255, (37, 53, 3), dtype=np.uint8),
        rng.integers(0, 255, (29, 31, 3), dtype=np.uint8),
    ]
    for image, prediction in zip(images, method.predict_batch(images)):
        assert prediction.foreground is not None and prediction.instances is not None
        assert prediction.foreground.shape == image.shape[:2]
        assert prediction.instances.shape == image.shape[:2]
        assert prediction.instances.dtype == np.int32
        assert set(np.unique(prediction.instances[prediction.foreground])) <= set(range(1, 10_000))


@pytest.mark.parametrize("name", CASE_NAMES)
def test_training_lowers_the_loss_and_beats_the_untrained_model(
    name: str,
    trained: Trained,
    untrained: Callable[[Any], Method],
    tiny_data: dict[str, list[Sample]],
) -> None:
    case, method = trained(name)
    log = method.training_log_  # type: ignore[attr-defined]
    assert log.steps == case.steps and log.stopped_by == "max_steps"
    assert np.mean(log.losses[-5:]) < np.mean(log.losses[:5])
    before = mean_dice(untrained(case), tiny_data["test"])
    after = mean_dice(method, tiny_data["test"])
    assert after > before + 0.05, (before, after)
    record = method.predict(tiny_data["test"][0].image).extras["training"]
    assert record["budget"] == {"name": "test", "max_steps": case.steps, "max_seconds": None}


@pytest.mark.parametrize("name", CASE_NAMES)
def test_state_round_trips_through_safetensors(name: str, trained: Trained, tmp_path: Path) -> None:
    case, method = trained(name)
    state = method.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    save_file(state, str(tmp_path / "state.safetensors"))
    restored = case.make()
    restored.load_state_dict(load_file(str(tmp_path / "state.safetensors")))
    image = np.random.default_rng(1).integers(0, 255, (41, 45, 3), dtype=np.uint8)
    a, b = method.predict(image), restored.predict(image)
    np.testing.assert_array_equal(a.instances, b.instances)
    if a.probabilities is not None:
        np.testing.assert_array_equal(a.probabilities, b.probabilities)
