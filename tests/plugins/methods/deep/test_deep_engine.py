"""Engine pieces: schedule, losses, device choice, padded and tiled inference."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from plugins.methods.deep.engine import lr_factor, resolve_device, seeded
from plugins.methods.deep.inference import forward_tiled, pad_to_multiple, predict_logits
from plugins.methods.deep.losses import segmentation_loss, soft_dice_loss


def test_schedules_by_hand() -> None:
    assert lr_factor(0.0, "cosine") == pytest.approx(0.1)
    assert lr_factor(0.05, "cosine") == pytest.approx(1.0)
    assert lr_factor(0.525, "cosine") == pytest.approx(0.5)  # half-way through the decay
    assert lr_factor(1.0, "cosine") == pytest.approx(0.0)
    assert lr_factor(0.0, "onecycle") == pytest.approx(1 / 25)
    assert lr_factor(0.3, "onecycle") == pytest.approx(1.0)
    assert lr_factor(1.0, "onecycle") == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_factor(0.5, "step")


def test_device_falls_back_to_cpu_without_cuda() -> None:
    assert resolve_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cuda").type == expected


def test_seeded_asks_for_deterministic_kernels_in_warn_only_mode_and_restores_flags() -> None:
    """What this checks: the seed, the warn-only request and the restored global flags.

    Warn-only does not enforce determinism: an operation without a deterministic kernel (some
    CUDA backward passes) warns and runs anyway, so a training stays possible on a GPU.  That
    a seeded CPU training is bitwise repeatable is checked where it matters, by the
    conformance kit (two trainings with one seed must give identical predictions)."""
    before = torch.are_deterministic_algorithms_enabled()
    with seeded(3):
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        a = torch.rand(3)
    with seeded(3):
        b = torch.rand(3)
    assert torch.equal(a, b)
    assert torch.are_deterministic_algorithms_enabled() == before


def test_soft_dice_by_hand() -> None:
    probs = torch.tensor([0.5, 1.0, 0.0, 0.0]).view(1, 1, 2, 2)
    target = torch.tensor([1.0, 1.0, 0.0, 1.0]).view(1, 1, 2, 2)
    valid = torch.ones(1, 2, 2, dtype=torch.bool)
    # intersection 1.5, sums 1.5 + 3 → Dice (2·1.5 + 1) / (4.5 + 1)
    assert float(soft_dice_loss(probs, target, valid)) == pytest.approx(1 - 4 / 5.5)
    valid[0, 1, 1] = False  # drop the missed pixel: (3 + 1) / (3.5 + 1)
    assert float(soft_dice_loss(probs, target, valid)) == pytest.approx(1 - 4 / 4.5)


def test_binary_loss_is_bce_plus_dice_on_valid_pixels() -> None:
    logits = torch.tensor([0.0, 2.0, -1.0, 3.0]).view(1, 1, 2, 2)
    labels = torch.tensor([1, 1, 0, 0]).view(1, 2, 2)
    valid = torch.tensor([True, True, True, False]).view(1, 2, 2)
    p = [0.5, 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(1))]
    bce = -(math.log(p[0]) + math.log(p[1]) + math.log(1 - p[2])) / 3
    dice = (2 * (p[0] + p[1]) + 1) / (sum(p) + 2 + 1)
    assert float(segmentation_loss(logits, labels, valid, 0.0)) == pytest.approx(bce, rel=1e-5)
    assert float(segmentation_loss(logits, labels, valid)) == pytest.approx(bce + 1 - dice, rel=1e-5)


def test_multiclass_loss_uses_cross_entropy() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]]).T.reshape(1, 3, 1, 2)
    labels = torch.tensor([[[0, 1]]])
    valid = torch.ones(1, 1, 2, dtype=torch.bool)
    expected = torch.nn.functional.cross_entropy(logits, labels)
    assert float(segmentation_loss(logits, labels, valid, 0.0)) == pytest.approx(float(expected))


def test_padding_reaches_the_stride() -> None:
    x = torch.arange(37 * 53, dtype=torch.float32).view(1, 1, 37, 53)
    padded = pad_to_multiple(x, 16)
    assert padded.shape[-2:] == (48, 64)
    assert torch.equal(padded[..., :37, :53], x)
    assert float(padded[0, 0, 37, 0]) == float(x[0, 0, 35, 0])  # reflected


def test_tiles_reassemble_a_pointwise_network_exactly() -> None:
    conv = torch.nn.Conv2d(3, 2, 1)
    x = torch.randn(2, 3, 70, 45)
    with torch.no_grad():
        whole = conv(x)
        tiled = forward_tiled(conv, x, stride=8, tile=32)
    assert tiled.shape == (2, 2, 70, 45)
    torch.testing.assert_close(tiled, whole)


def test_tiles_match_monai_sliding_window() -> None:
    """Tiles of 32 px overlapping by a quarter, logits averaged: MONAI's sliding window with
    the same window and overlap places the same windows, so any network gives the same logits
    (here a 3x3 network whose tiled output differs from the whole-image one)."""
    inferers = pytest.importorskip("monai.inferers")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 3, padding=1)
    ).eval()
    x = torch.randn(2, 3, 70, 45)
    with torch.no_grad():
        ours = forward_tiled(net, x, stride=8, tile=32)
        theirs = inferers.sliding_window_inference(
            x, roi_size=(32, 32), sw_batch_size=1, predictor=net, overlap=0.25, mode="constant"
        )
        whole = net(x)
    assert not torch.allclose(ours, whole, atol=1e-3)  # the tiles do change the logits
    torch.testing.assert_close(ours, theirs)


def test_predict_logits_batches_by_size_and_keeps_order() -> None:
    conv = torch.nn.Conv2d(3, 1, 1)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in [(9, 7), (5, 5), (9, 7)]]
    batched = predict_logits(conv, images, torch.device("cpu"), stride=4, tile=64, batch_size=8)
    alone = [predict_logits(conv, [im], torch.device("cpu"), 4, 64, 1)[0] for im in images]
    assert [b.shape for b in batched] == [(1, 9, 7), (1, 5, 5), (1, 9, 7)]
    for b, a in zip(batched, alone):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
