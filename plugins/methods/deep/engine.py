"""The one training loop every deep method uses.

Seeded and deterministic on the CPU; mixed precision (bf16, else fp16 with a gradient scaler)
and channels-last only on a GPU; AdamW with a cosine or one-cycle schedule driven by the
fraction of the budget's steps spent (seconds drive it only for a budget without steps; with
steps they are a safety cap, recorded in ``stopped_by`` when it ends training); a method's
``steps`` parameter replaces the budget's step count; model selection on validation samples,
keeping the best state.  Methods supply two callables: the loss of a batch of patches and the
validation score (higher is better).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from harness import Budget, RunContext
from plugins.methods.deep.augment import Augment, Patch
from plugins.methods.deep.data import TrainingSet


@dataclass(frozen=True)
class TrainConfig:
    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    batch_size: int = 4
    patch_size: int = 256
    augment: Augment = field(default_factory=Augment)
    validate_every: int = 0  # 0: five validations over a step budget (every 40 steps without one)
    steps: int = 0  # the method's own step count, replacing the budget's (0: the budget's)


@dataclass
class TrainResult:
    """What happened during fitting (recorded with the method's results)."""

    budget: dict[str, Any]
    steps: int = 0
    seconds_per_step: float = 0.0
    seconds: float = 0.0
    stopped_by: str = ""
    best_step: int = 0
    best_score: float = float("-inf")
    first_loss: float = float("nan")
    last_loss: float = float("nan")
    device: str = "cpu"
    precision: str = "float32"
    losses: list[float] = field(default_factory=list)  # every step's training loss
    history: list[tuple[int, float]] = field(default_factory=list)  # (step, validation score)

    def as_dict(self) -> dict[str, Any]:
        """The summary without the per-step lists."""
        out = asdict(self)
        out.pop("losses")
        out.pop("history")
        return out


def resolve_device(name: str) -> torch.device:
    """``auto`` and ``cuda*`` give the GPU when one is available, else the CPU."""
    if name in ("auto", "gpu") or name.startswith("cuda"):
        if torch.cuda.is_available():
            return torch.device("cuda" if name in ("auto", "gpu") else name)
        return torch.device("cpu")
    return torch.device(name)


def amp_dtype(device: torch.device) -> torch.dtype | None:
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch and switch on deterministic algorithms (warn-only) for the block.

    Filling fresh memory with NaN (a debugging aid that deterministic mode enables) is
    switched off: it costs much time and does not change results."""
    from torch.utils import deterministic

    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    previous_fill = deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)
        deterministic.fill_uninitialized_memory = previous_fill  # type: ignore[attr-defined]


def lr_factor(fraction: float, schedule: str) -> float:
    """Multiplier of the peak learning rate after ``fraction`` of the budget (0..1)."""
    t = min(max(fraction, 0.0), 1.0)
    if schedule == "cosine":  # short linear warm-up, then cosine decay to zero
        warm = 0.05
        if t < warm:
            return 0.1 + 0.9 * t / warm
        return 0.5 * (1.0 + math.cos(math.pi * (t - warm) / (1.0 - warm)))
    if schedule == "onecycle":  # cosine up from 1/25 over 30 %, then cosine down to 1/1e4
        peak = 0.3
        if t < peak:
            return 1 / 25 + (1 - 1 / 25) * 0.5 * (1 - math.cos(math.pi * t / peak))
        return 1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * (t - peak) / (1 - peak)))
    if schedule == "constant":
        return 1.0
    raise ValueError(f"unknown schedule {schedule!r}; choose cosine, onecycle or constant")


def effective_budget(budget: Budget, steps: int = 0) -> Budget:
    """``budget`` with its step count replaced by a method's own ``steps`` (0: unchanged).

    The safety cap keeps the budget's allowance per step when a method asks for more steps: a
    budget of 150 steps capped at 1800 s allows 12 s a step, so ``steps=450`` is capped at
    5400 s (a fixed cap would end a longer run early on the very machine the budget was sized
    for).  Fewer steps keep the budget's whole cap: a heavy network with few steps (30 steps of
    FCN-ResNet50 at 20-50 s a step on one core, validation included) must not be cut by an
    allowance sized for the average step."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0 (0: the budget's), got {steps}")
    if not steps:
        return budget
    cap = budget.max_seconds
    if cap is not None and budget.max_steps and steps > budget.max_steps:
        cap = cap * steps / budget.max_steps
    return Budget(f"{budget.name}+steps={steps}", max_steps=steps, max_seconds=cap)


def progress(budget: Budget, step: int, elapsed: float) -> float:
    """Fraction of the budget spent, which drives the schedule: steps when the budget counts
    steps (seconds are then only a cap), else seconds."""
    if budget.max_steps:
        return step / budget.max_steps
    assert budget.max_seconds
    return elapsed / budget.max_seconds


def stop_reason(budget: Budget, step: int, elapsed: float) -> str:
    """``max_steps`` or ``max_seconds`` once either limit is reached, else ''."""
    if budget.max_steps and step >= budget.max_steps:
        return "max_steps"
    if budget.max_seconds and elapsed >= budget.max_seconds:
        return "max_seconds"
    return ""


def copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _progress_bar(enabled: bool, total: int | None) -> tuple[Any, Any]:
    if not enabled:
        return contextlib.nullcontext(), None
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("training"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]:.4f} val {task.fields[score]:.4f}"),
        TimeElapsedColumn(),
    )
    return bar, bar.add_task("train", total=total, loss=float("nan"), score=float("nan"))


def train(
    model: nn.Module,
    data: TrainingSet,
    batch_loss: Callable[[nn.Module, Sequence[Patch], torch.device], torch.Tensor],
    validate: Callable[[nn.Module], float],
    config: TrainConfig,
    context: RunContext,
    device: torch.device,
) -> TrainResult:
    """Train ``model`` in place within ``context.budget``; leave it holding the best state."""
    budget = effective_budget(context.budget, config.steps)
    if not budget.max_steps and not budget.max_seconds:
        raise ValueError(f"budget {budget.name!r} sets neither max_steps nor max_seconds")
    rng = np.random.default_rng(context.seed)
    dtype = amp_dtype(device)
    result = TrainResult(
        budget=budget.as_dict(), device=str(device), precision=str(dtype or torch.float32)
    )
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    every = config.validate_every or max(1, (budget.max_steps or 200) // 5)
    best_state = copy_state(model)
    start = time.perf_counter()
    bar, task = _progress_bar(context.progress, budget.max_steps)
    with bar:
        while True:
            elapsed = time.perf_counter() - start
            result.stopped_by = stop_reason(budget, result.steps, elapsed)
            if result.stopped_by:
                break
            spent = progress(budget, result.steps, elapsed)
            for group in optimizer.param_groups:
                group["lr"] = config.lr * lr_factor(spent, config.schedule)
            model.train()
            patches = data.draw(rng, config.batch_size, config.patch_size, config.augment)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = batch_loss(model, patches, device)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"training loss became {loss.item()} at step {result.steps}; lower lr"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            result.steps += 1
            value = float(loss.detach())
            if result.steps == 1:
                result.first_loss = value
            result.last_loss = value
            result.losses.append(value)
            last = bool(stop_reason(budget, result.steps, time.perf_counter() - start))
            if result.steps % every == 0 or last:
                model.eval()
                score = float(validate(model))
                result.history.append((result.steps, score))
                if score > result.best_score:
                    result.best_score, result.best_step = score, result.steps
                    best_state = copy_state(model)
                if task is not None:
                    bar.update(task, score=score)
            if task is not None:
                bar.update(task, advance=1, loss=value)
    model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - start
    result.seconds_per_step = result.seconds / max(1, result.steps)
    return result
