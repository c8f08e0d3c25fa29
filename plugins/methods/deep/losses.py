"""Segmentation losses: cross-entropy (binary or multi-class) plus soft Dice, over valid pixels."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_dice_loss(probs: torch.Tensor, onehot: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """1 − mean soft Dice over channels (N×C×H×W probabilities and one-hot targets).

    Sums run over the batch and the valid pixels; a channel absent from both prediction and
    target contributes a Dice of 1 (smoothing of 1 in numerator and denominator).
    """
    weight = valid.unsqueeze(1).to(probs.dtype)
    dims = (0, 2, 3)
    intersection = (probs * onehot * weight).sum(dims)
    total = ((probs + onehot) * weight).sum(dims)
    dice = (2 * intersection + 1.0) / (total + 1.0)
    return 1.0 - dice.mean()


def segmentation_loss(
    logits: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor, dice_weight: float = 1.0
) -> torch.Tensor:
    """BCE (one output channel) or CE (several) plus ``dice_weight`` × soft Dice.

    ``logits`` N×C×H×W; ``labels`` N×H×W integer (binary: 0/1); ``valid`` N×H×W bool.
    """
    logits = logits.float()
    weight = valid.to(logits.dtype)
    n_valid = weight.sum().clamp_min(1.0)
    if logits.shape[1] == 1:
        target = labels.to(logits.dtype)
        raw = F.binary_cross_entropy_with_logits(logits[:, 0], target, reduction="none")
        probs = torch.sigmoid(logits)
        onehot = target.unsqueeze(1)
    else:
        raw = F.cross_entropy(logits, labels.clamp(0, logits.shape[1] - 1), reduction="none")
        probs = torch.softmax(logits, dim=1)
        onehot = F.one_hot(labels.clamp(0, logits.shape[1] - 1), logits.shape[1])
        onehot = onehot.permute(0, 3, 1, 2).to(logits.dtype)
    ce = (raw * weight).sum() / n_valid
    if dice_weight <= 0:
        return ce
    return ce + dice_weight * soft_dice_loss(probs, onehot, valid)
