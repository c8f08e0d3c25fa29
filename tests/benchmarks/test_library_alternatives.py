"""The libraries the deep methods could use instead of their own code, timed side by side.

- U-Net++: segbench's network (``nets/unet_plus_plus.py``) against segmentation-models-pytorch's
  ``UnetPlusPlus``, both on timm's ``efficientnet_lite0`` features, three output classes: one
  training step of 8×224² (forward, backward, AdamW) and one prediction of a 512×512 image.
- Tiled inference of an image larger than the tile: ``inference.forward_tiled`` against MONAI's
  ``sliding_window_inference`` with the same window and overlap (the two give the same logits:
  ``test_tiles_match_monai_sliding_window``).

One thread each, so the comparison does not depend on the machine's core count.  Run with
``pytest tests/benchmarks/test_library_alternatives.py --benchmark-enable``; the measured
figures and the decision are in docs/DESIGN.md ("Libraries for the networks and tiling").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from harness.executors.base import limit_threads
from plugins.methods.deep.inference import forward_tiled
from plugins.methods.deep.nets.unet_plus_plus import UNetPlusPlus


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    restore = limit_threads(1)  # the limit a cell runs under, torch's pool included
    yield
    restore()


def _segbench_unet_plus_plus() -> Any:
    encoder = timm.create_model("efficientnet_lite0", pretrained=False, features_only=True)
    return UNetPlusPlus(encoder, 3, decoder_width=32)


def _smp_unet_plus_plus() -> Any:
    smp = pytest.importorskip("segmentation_models_pytorch")
    return smp.UnetPlusPlus(encoder_name="tu-efficientnet_lite0", encoder_weights=None, classes=3)


NETWORKS: dict[str, Callable[[], Any]] = {
    "segbench": _segbench_unet_plus_plus,
    "smp": _smp_unet_plus_plus,
}


def _enabled(benchmark: Any) -> None:
    if benchmark.disabled:
        pytest.skip("benchmark: run with --benchmark-enable")


def _network(benchmark: Any, which: str) -> Any:
    """The seeded network ``which``, its parameter count recorded with the benchmark."""
    _enabled(benchmark)
    torch.manual_seed(0)
    model = NETWORKS[which]()
    benchmark.extra_info["parameters"] = sum(p.numel() for p in model.parameters())
    return model


@pytest.mark.parametrize("which", NETWORKS)
def test_unet_plus_plus_training_step(benchmark, which: str) -> None:  # type: ignore[no-untyped-def]
    model = _network(benchmark, which).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(8, 3, 224, 224)
    y = torch.randint(0, 3, (8, 224, 224))

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    benchmark.pedantic(step, rounds=5, warmup_rounds=1, iterations=1)


@pytest.mark.parametrize("which", NETWORKS)
def test_unet_plus_plus_predict_512(benchmark, which: str) -> None:  # type: ignore[no-untyped-def]
    model = _network(benchmark, which).eval()
    x = torch.randn(1, 3, 512, 512)

    def predict() -> None:
        with torch.inference_mode():
            model(x)

    benchmark.pedantic(predict, rounds=5, warmup_rounds=1, iterations=1)


@pytest.mark.parametrize("which", ["segbench", "monai"])
def test_tiled_inference_2048(benchmark, which: str) -> None:  # type: ignore[no-untyped-def]
    """A 2048×2048 image in 1024 px tiles (nine windows), overlap a quarter, a small network."""
    _enabled(benchmark)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 3, 3, padding=1)
    ).eval()
    x = torch.randn(1, 3, 2048, 2048)
    if which == "monai":
        inferers = pytest.importorskip("monai.inferers")

        def run() -> None:
            with torch.inference_mode():
                inferers.sliding_window_inference(
                    x, (1024, 1024), 1, net, overlap=0.25, mode="constant"
                )
    else:

        def run() -> None:
            with torch.inference_mode():
                forward_tiled(net, x, stride=32, tile=1024)

    benchmark.pedantic(run, rounds=5, warmup_rounds=1, iterations=1)
