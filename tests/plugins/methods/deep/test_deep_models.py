"""Every deep model: odd image sizes, learning on synthetic nuclei (threshold-free measures),
exact save/load round trip."""

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
from tests.plugins.methods.deep.learning import contrast, held_out_loss

TrainedCase = tuple[Any, Method]


def test_odd_sizes_give_full_size_outputs(trained_case: TrainedCase) -> None:
    _, method = trained_case
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


# Margins are far inside the spread measured over training seeds, data seeds, thread counts
# and CPU kernels (ATEN_CPU_CAPABILITY default/avx2/avx512, DNNL_MAX_CPU_ISA, OPENBLAS_CORETYPE);
# see the learning-test section of docs/DESIGN.md.  No assertion is on a thresholded score.
LOSS_RATIO_BELOW = 0.9
CONTRAST_GAIN_ABOVE = 0.1


def test_training_lowers_the_loss_and_moves_the_scores_toward_the_target(
    trained_case: TrainedCase,
    untrained: Callable[[Any], Method],
    tiny_data: dict[str, list[Sample]],
) -> None:
    case, method = trained_case
    log = method.training_log_  # type: ignore[attr-defined]
    assert log.steps == case.steps and log.stopped_by == "max_steps"
    assert np.mean(log.losses[-5:]) < LOSS_RATIO_BELOW * np.mean(log.losses[:5])
    fresh = untrained(case, method)
    before, after = held_out_loss(fresh, tiny_data["test"]), held_out_loss(method, tiny_data["test"])
    assert after < LOSS_RATIO_BELOW * before, (before, after)  # on images it never saw
    if case.name != "mask_rcnn":  # its masks are not yet scored after 15 steps; its loss is
        gain = contrast(method, tiny_data["test"]) - contrast(fresh, tiny_data["test"])
        assert gain > CONTRAST_GAIN_ABOVE, gain
    record = method.predict(tiny_data["test"][0].image).extras["training"]
    assert record["budget"] == {"name": "test", "max_steps": case.steps, "max_seconds": None}


def test_state_round_trips_through_safetensors(trained_case: TrainedCase, tmp_path: Path) -> None:
    case, method = trained_case
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
