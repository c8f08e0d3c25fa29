"""Speed of segbench's U-Net++ against segmentation-models-pytorch's, same encoder.

Both networks put a U-Net++ decoder on timm's ``efficientnet_lite0`` feature pyramid (smp
through its ``tu-`` timm-universal encoder), with three output classes as in the rim recipe.
Each round times, interleaved, one training step (forward, loss, backward, AdamW) on a batch
of 8 × 224² and one inference forward of a 512² image, on one thread; the script prints the
median of each and the ratio smp / segbench.  segmentation-models-pytorch is not a dependency:
install it next to segbench to run this (``pip install --target DIR --no-deps
segmentation-models-pytorch`` and put DIR on ``PYTHONPATH``).

    python scripts/compare_smp.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import timm
import torch


def ours() -> torch.nn.Module:
    from plugins.methods.deep.nets.unet_plus_plus import UNetPlusPlus

    encoder = timm.create_model("efficientnet_lite0", pretrained=False, features_only=True)
    return UNetPlusPlus(encoder, 3, decoder_width=32)


def theirs() -> torch.nn.Module:
    import segmentation_models_pytorch as smp

    return smp.UnetPlusPlus("tu-efficientnet_lite0", encoder_weights=None, classes=3)


def train_step(net: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor) -> float:
    start = time.perf_counter()
    net.train()
    loss = net(x).square().mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return time.perf_counter() - start


@torch.inference_mode()
def infer(net: torch.nn.Module, x: torch.Tensor) -> float:
    net.eval()
    start = time.perf_counter()
    net(x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    nets = {"segbench": ours(), "smp": theirs()}
    opts = {k: torch.optim.AdamW(n.parameters(), lr=1e-3) for k, n in nets.items()}
    batch, image = torch.randn(8, 3, 224, 224), torch.randn(1, 3, 512, 512)
    times: dict[str, dict[str, list[float]]] = {k: {"train": [], "infer": []} for k in nets}
    for name, net in nets.items():  # warm-up outside the timing
        train_step(net, opts[name], batch)
        infer(net, image)
    for _ in range(args.rounds):
        for name, net in nets.items():
            times[name]["train"].append(train_step(net, opts[name], batch))
            times[name]["infer"].append(infer(net, image))
    for name, net in nets.items():
        params = sum(p.numel() for p in net.parameters()) / 1e6
        print(f"{name:9s} params {params:5.2f} M  train step (8x224²) {statistics.median(times[name]['train']):6.3f} s"
              f"  inference 512² {statistics.median(times[name]['infer']) * 1000:7.1f} ms")
    for what in ("train", "infer"):
        ratio = statistics.median(times["smp"][what]) / statistics.median(times["segbench"][what])
        print(f"smp / segbench, {what}: {ratio:.2f}")


if __name__ == "__main__":
    main()
