"""Inference on whole images of any size: optionally rescale, pad to the network stride, tile
large images with overlap (averaging the logits where tiles overlap), crop back, average the
logits over test-time flips/quarter turns, resize back; batches of equal-size images."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from plugins.methods.deep.engine import amp_dtype

#: ImageNet statistics: the input normalisation every semantic network here expects.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

Forward = Callable[[torch.Tensor], torch.Tensor]


def to_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """N×H×W×3 float in [0, 1] (or uint8) → normalised N×3×H×W float32 tensor."""
    array = np.asarray(images)
    x = torch.from_numpy(np.ascontiguousarray(array)).to(device)
    x = x.float() / 255.0 if array.dtype == np.uint8 else x.float()
    x = x.permute(0, 3, 1, 2)
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    x = (x - mean) / std
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def pad_to_multiple(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Pad the bottom/right of N×C×H×W to multiples of ``stride`` (reflect when possible)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    if not (ph or pw):
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def _starts(length: int, tile: int) -> list[int]:
    if length <= tile:
        return [0]
    step = max(1, tile - tile // 4)
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def forward_padded(forward: Forward, x: torch.Tensor, stride: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return forward(pad_to_multiple(x, stride))[..., :h, :w]


def forward_tiled(forward: Forward, x: torch.Tensor, stride: int, tile: int) -> torch.Tensor:
    """Logits N×C×H×W for any H, W: one padded pass when the image fits in ``tile``, else
    overlapping tiles whose logits are averaged."""
    h, w = x.shape[-2:]
    if h <= tile and w <= tile:
        return forward_padded(forward, x, stride)
    out: torch.Tensor | None = None
    count = torch.zeros((1, 1, h, w), device=x.device)
    for top in _starts(h, tile):
        for left in _starts(w, tile):
            window = (..., slice(top, top + tile), slice(left, left + tile))
            logits = forward_padded(forward, x[window], stride).float()
            if out is None:
                out = torch.zeros((x.shape[0], logits.shape[1], h, w), device=x.device)
            out[window] += logits
            count[window] += 1
    assert out is not None
    return out / count


#: Test-time augmentation: each transform is (number of quarter turns, flip the width axis).
TTA = {
    "none": ((0, False),),
    "flips": ((0, False), (0, True), (2, False), (2, True)),  # identity, h, h+v (= rot180), v
    "rot90": ((0, False), (1, False), (2, False), (3, False)),
    "d4": tuple((k, f) for f in (False, True) for k in range(4)),
}


def check_tta(name: str) -> None:
    if name not in TTA:
        raise ValueError(f"unknown test-time augmentation {name!r}; choose from {', '.join(TTA)}")


def tta_apply(x: torch.Tensor, turns: int, flip: bool) -> torch.Tensor:
    """Flip the width axis (if ``flip``), then rotate by ``turns`` quarter turns (N×C×H×W)."""
    if flip:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, turns, dims=(-2, -1)) if turns % 4 else x


def tta_invert(x: torch.Tensor, turns: int, flip: bool) -> torch.Tensor:
    """The inverse of :func:`tta_apply` with the same arguments."""
    if turns % 4:
        x = torch.rot90(x, -turns, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if flip else x


def forward_tta(forward: Forward, x: torch.Tensor, tta: str) -> torch.Tensor:
    """Mean of ``forward`` over the transforms of ``tta``, each mapped back to ``x``'s frame."""
    total: torch.Tensor | None = None
    transforms = TTA[tta]
    for turns, flip in transforms:
        y = tta_invert(forward(tta_apply(x, turns, flip)).float(), turns, flip)
        total = y if total is None else total + y
    assert total is not None
    return total / len(transforms)


def predict_logits(
    forward: Forward,
    images: Sequence[np.ndarray],
    device: torch.device,
    stride: int,
    tile: int,
    batch_size: int,
    scale: float = 1.0,
    tta: str = "none",
) -> list[np.ndarray]:
    """Float32 logits C×H×W for each H×W×3 image; equal-size images share batches.

    ``scale`` != 1: the network sees the image resized by ``scale`` and its logits are resized
    back (bilinear) to the image's size; ``tta`` names the test-time transforms averaged."""
    from plugins.methods.deep.recipe import resize, scaled_shape

    check_tta(tta)
    results: list[np.ndarray | None] = [None] * len(images)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        by_shape.setdefault(np.asarray(image).shape, []).append(i)
    dtype = amp_dtype(device)
    with (
        torch.inference_mode(),
        torch.autocast(device.type, dtype=dtype, enabled=dtype is not None),
    ):
        for shape, indices in by_shape.items():
            size = scaled_shape(shape, scale)
            for k in range(0, len(indices), max(1, batch_size)):
                chunk = indices[k : k + max(1, batch_size)]
                batch = [resize(np.asarray(images[i])[..., :3], size, nearest=False) for i in chunk]
                x = to_tensor(np.stack(batch), device)
                logits = forward_tta(lambda t: forward_tiled(forward, t, stride, tile), x, tta)
                if tuple(logits.shape[-2:]) != tuple(shape[:2]):
                    logits = F.interpolate(
                        logits.float(), size=tuple(shape[:2]), mode="bilinear", align_corners=False
                    )
                for i, value in zip(chunk, logits.float().cpu().numpy()):
                    results[i] = value
    return [r for r in results if r is not None]
