"""Threshold-free measures of what a deep model has learnt, for the learning tests.

A thresholded score (Dice of the final mask) jumps between 0 and its full value when a
detection score or a probability crosses its cut-off, so after a few training steps its value
depends on the floating-point trajectory of the machine.  The contrast of a continuous
foreground score map moves smoothly with training, whatever the CPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness import Method, Sample


def foreground_scores(method: Method, images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per-pixel foreground score in [0, 1] before any threshold.

    Semantic models: the foreground probability (1 − background for several classes).
    Mask R-CNN: the largest detection score × mask probability over every detection the
    network returns with its score cut-off lifted (so no detection is dropped by a threshold).
    """
    model = method.model_  # type: ignore[attr-defined]
    if hasattr(model, "roi_heads"):
        return _detection_scores(method, model, images)
    out = []
    for prediction in method.predict_batch(list(images)):
        probabilities = prediction.probabilities
        assert probabilities is not None, f"{method.name} returns no probabilities"
        out.append(1.0 - probabilities[0] if probabilities.ndim == 3 else probabilities)
    return out


def _detection_scores(method: Method, model: object, images: Sequence[np.ndarray]) -> list[np.ndarray]:
    import torch

    heads = model.roi_heads  # type: ignore[attr-defined]
    saved, heads.score_thresh = heads.score_thresh, 0.0
    model.eval()  # type: ignore[attr-defined]
    out = []
    try:
        with torch.inference_mode():
            for image in images:
                x = torch.from_numpy(np.ascontiguousarray(image[..., :3])).permute(2, 0, 1)
                x = x.float() / 255.0
                method._native_size(model, *x.shape[-2:])  # type: ignore[attr-defined]
                found = model([x])[0]  # type: ignore[operator]
                soft = found["masks"][:, 0].float() * found["scores"].float()[:, None, None]
                out.append(soft.amax(dim=0).numpy() if len(soft) else np.zeros(x.shape[-2:], np.float32))
    finally:
        heads.score_thresh = saved
    return out


def contrast(method: Method, samples: Sequence[Sample]) -> float:
    """Mean over images of (mean score inside objects − mean score outside them)."""
    maps = foreground_scores(method, [s.image for s in samples])
    values = []
    for score, sample in zip(maps, samples):
        inside = np.asarray(sample.foreground, dtype=bool)
        values.append(float(score[inside].mean()) - float(score[~inside].mean()))
    return float(np.mean(values))


def held_out_loss(method: Method, samples: Sequence[Sample], seed: int = 0) -> float:
    """The method's own training loss on unseen images (no gradient, a copy of the model).

    Computed in training mode, as Mask R-CNN returns its losses only there; a copy keeps
    batch-norm statistics of the model under test untouched, and a fixed seed fixes the
    proposals that the detection heads sample."""
    import copy

    import torch

    from plugins.methods.deep.augment import Patch
    from plugins.methods.deep.recipe import rim_encoding

    model = copy.deepcopy(method.model_).train()  # type: ignore[attr-defined]
    patches = []
    for sample in samples:
        instances = np.asarray(sample.instances, dtype=np.int64)
        target = method.target  # type: ignore[attr-defined]
        if target == "instances":
            labels = instances
        elif target == "rim":
            labels = rim_encoding(instances, method.resolved_["rim"])  # type: ignore[attr-defined]
        else:
            labels = (instances > 0).astype(np.int64)
        patches.append(
            Patch(
                image=np.ascontiguousarray(sample.image[..., :3], dtype=np.float32) / 255.0,
                labels=labels,
                valid=np.ones(labels.shape, dtype=bool),
            )
        )
    torch.manual_seed(seed)
    with torch.no_grad():
        loss = method.batch_loss(model, patches, torch.device("cpu"))  # type: ignore[attr-defined]
    return float(loss)
