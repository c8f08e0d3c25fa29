"""The deep methods are listed without PyTorch, and running one without it says what to install."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from harness import Method, RunContext
from harness.plugins import build_registry
from plugins.methods.deep import METHODS

NAMES = {"unet", "unet_plus_plus", "segformer", "fcn_resnet50", "mask_rcnn"}


def test_entry_point_registers_every_deep_method() -> None:
    registry = build_registry()
    listed = {e.name for e in registry.entries() if e.kind == "method"}
    assert NAMES <= listed
    assert registry.get("method", "unet").source.entry_point == "methods.deep"


@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.name)
def test_parameters_are_explicit_and_recorded(cls: type[Method]) -> None:
    method = cls()
    params = method.get_params()
    assert params == cls.param_defaults()
    assert cls.learns and cls.uses_gpu
    assert "random initialisation" in cls.description


@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.name)
def test_without_torch_fit_names_the_missing_package(cls: type[Method], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    method = cls()
    method.setup(RunContext())
    with pytest.raises(ImportError, match=rf"method '{cls.name}' needs PyTorch: pip install 'segbench\[deep\]'"):
        method.fit([], [])
    with pytest.raises(ImportError, match="needs PyTorch"):
        method.load_state_dict({"meta.num_classes": np.array([1])})


def test_unfitted_predict_says_what_to_do() -> None:
    pytest.importorskip("torch")
    method = METHODS[0]()
    with pytest.raises(RuntimeError, match="not fitted"):
        method.predict(np.zeros((8, 8, 3), np.uint8))


def test_bad_head_is_rejected() -> None:
    with pytest.raises(ValueError, match="head must be auto, binary or classes"):
        METHODS[0](head="multi")


def test_importing_the_plugin_does_not_import_torch() -> None:
    code = (
        "import sys; import plugins.methods.deep as deep; "
        "heavy = {'torch', 'torchvision', 'timm', 'transformers'} & set(sys.modules); "
        "print(len(deep.METHODS), sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["5", "[]"]
