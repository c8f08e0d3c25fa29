"""What every deep method shares: lazy optional imports, fitting through the one engine,
batched prediction, state round-trip as numpy arrays, and the recorded training summary.

Nothing here imports torch at module level, so the methods are listed (and explain what to
install) on a light installation without it.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from harness import Dataset, Method, Prediction, Sample
from plugins.methods.deep.augment import Augment
from plugins.methods.deep.data import Target, split_validation

if TYPE_CHECKING:
    import torch
    from torch import nn

    from plugins.methods.deep.augment import Patch

#: Optional module → what to call it in the error message.
_PACKAGES = {
    "torch": "PyTorch",
    "torchvision": "torchvision",
    "timm": "timm",
    "transformers": "transformers",
}


def require(method: str, modules: Sequence[str]) -> None:
    """Raise a clear ImportError when an optional package of ``method`` is missing."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            label = _PACKAGES.get(module, module)
            raise ImportError(
                f"method {method!r} needs {label}: pip install 'segbench[deep]'"
            ) from error


class DeepMethod(Method):
    """Base of the deep methods; subclasses build the network and define loss and output."""

    learns = True
    uses_gpu = True
    # a new torch kernel can change a trained network: its version joins the predict key
    result_packages = ("torch", "torchvision")
    predict_batch_size = 4  # bench run predicts same-sized images four at a time
    needs: ClassVar[tuple[str, ...]] = ("torch",)
    #: What label map the network learns from.
    target: ClassVar[Target] = "foreground"

    # parameters every deep method has (each lists them explicitly in its __init__)
    lr: float
    weight_decay: float
    schedule: str
    batch_size: int
    patch_size: int
    augment: str
    validate_every: int
    weights: str
    steps: int  # the method's own step count, replacing the budget's (0: the budget's)
    select: str  # validation metric for model selection (auto: the dataset's primary metric)
    #: ``none``: images as given; ``auto``: an image with a bright background (brightfield,
    #: H&E: nuclei dark) is inverted before training and prediction, so nuclei are bright on
    #: every image as on fluorescence (the DSB2018 study's preprocessing); ``dark``: every
    #: image is inverted; ``bright``: none is.
    polarity: str = "none"

    # set by fit() / load_state_dict()
    model_: Any = None
    num_classes_: int = 0
    training_: dict[str, Any] | None = None
    training_log_: Any = None
    #: The primary metrics of the dataset this method was last checked against (for select=auto).
    dataset_metrics_: tuple[str, ...] = ()
    #: Recipe values resolved from the data at fit time (recorded with the training summary).
    resolved_: dict[str, Any] | None = None

    # ---- what subclasses provide -------------------------------------------------------

    def build(self, num_classes: int) -> nn.Module:
        """A freshly initialised network with ``num_classes`` outputs (1 = binary)."""
        raise NotImplementedError

    def stride(self) -> int:
        """Input sizes must be multiples of this (inputs are padded to it)."""
        return 32

    def output_classes(self, train: Sequence[Sample]) -> int:
        return 1

    def batch_loss(
        self, model: nn.Module, patches: Sequence[Patch], device: torch.device
    ) -> torch.Tensor:
        raise NotImplementedError

    def infer(
        self, model: nn.Module, images: Sequence[np.ndarray], device: torch.device
    ) -> list[Prediction]:
        raise NotImplementedError

    def load_pretrained(self, model: nn.Module) -> None:
        """Load packaged pretrained weights named by a parameter (none by default)."""

    def resolve(self, train: Sequence[Sample]) -> dict[str, Any]:
        """Recipe values resolved from the training data (recorded); the selection metric here."""
        from plugins.methods.deep.recipe import resolve_selection

        has_instances = bool(train) and all(s.instances is not None for s in train)
        return {"select": resolve_selection(self.select, self.dataset_metrics_, has_instances)}

    def training_set(self, samples: Sequence[Sample]) -> Any:
        from plugins.methods.deep.data import TrainingSet

        return TrainingSet.from_samples(samples, self.target)

    def validation_score(
        self, model: nn.Module, held_out: Sequence[Sample], device: torch.device
    ) -> float:
        """The selection metric of the model's predictions on the held-out samples."""
        from plugins.methods.deep.recipe import selection_references, selection_score

        assert self.resolved_ is not None
        metric = self.resolved_["select"]
        predictions = self.infer(model, [s.image for s in held_out], device)
        if metric == "dice":
            labels = [p.foreground_mask().astype(np.int32) for p in predictions]
        else:
            labels = [np.asarray(p.instances) for p in predictions]
        return selection_score(metric, labels, selection_references(metric, held_out))

    def after_training(
        self, model: nn.Module, held_out: Sequence[Sample], device: torch.device
    ) -> dict[str, Any]:
        """Tune post-processing on the held-out samples with the selected model (nothing by
        default); returns what to record."""
        return {}

    def not_applicable(self, dataset: Dataset) -> str | None:
        self.dataset_metrics_ = tuple(getattr(dataset, "primary_metrics", ()) or ())
        return super().not_applicable(dataset)

    # ---- the shared machinery ----------------------------------------------------------

    def checked_polarity(self, polarity: str) -> str:
        from plugins.methods.features import check_polarity

        if polarity != "none":
            check_polarity(polarity, f"method {self.name!r}")
        return polarity

    def oriented(self, image: np.ndarray) -> np.ndarray:
        """The image as the network sees it: inverted when ``polarity`` says its nuclei are
        dark, else unchanged.  ``auto`` decides per image by ``features.bright_background``
        (the median grey level is above 0.25: brightfield or H&E), as ``otsu`` does."""
        if self.polarity in ("none", "bright"):
            return image
        from plugins.methods.features import bright_background, intensity_channel

        array = np.asarray(image)
        dark = self.polarity == "dark" or bright_background(intensity_channel(array, "gray"))
        return 255 - array if dark else array  # images are 0-255 (see TrainingSet)

    def _oriented_samples(self, samples: Sequence[Sample]) -> list[Sample]:
        if self.polarity == "none":
            return list(samples)
        return [dataclasses.replace(s, image=self.oriented(s.image)) for s in samples]

    def _require(self) -> None:
        require(self.name, self.needs)

    def _device(self) -> torch.device:
        from plugins.methods.deep.engine import resolve_device

        return resolve_device(self.context.device)

    def new_model(self, num_classes: int) -> nn.Module:
        self._require()
        model = self.build(num_classes)
        self.load_pretrained(model)
        if getattr(self, "weights", ""):
            from plugins.methods.deep.checkpoint import load_matching, read_weights

            load_matching(
                model, read_weights(self.weights), f"method {self.name!r} weights={self.weights}"
            )
        return model

    def fit(self, train: Sequence[Sample], validation: Sequence[Sample]) -> None:
        self._require()
        from plugins.methods.deep import engine

        device = self._device()
        train_part, held_out = split_validation(train, validation, self.context.seed)
        train_part = self._oriented_samples(train_part)
        held_out = self._oriented_samples(held_out)
        config = engine.TrainConfig(
            lr=self.lr,
            weight_decay=self.weight_decay,
            schedule=self.schedule,
            batch_size=self.batch_size,
            patch_size=self.patch_size,
            augment=Augment.named(self.augment),
            validate_every=self.validate_every,
            steps=self.steps,
        )
        engine.lr_factor(0.0, config.schedule)  # reject an unknown schedule before building
        engine.effective_budget(self.context.budget, self.steps)  # reject negative steps
        self.resolved_ = self.resolve(train_part)

        def validate(model: nn.Module) -> float:
            return self.validation_score(model, held_out, device)

        with engine.seeded(self.context.seed):
            self.num_classes_ = self.output_classes(train_part)
            model = self.new_model(self.num_classes_).to(device)
            data = self.training_set(train_part)
            result = engine.train(
                model, data, self.batch_loss, validate, config, self.context, device
            )
            tuned = self.after_training(model, held_out, device)
        self.model_ = model
        self.training_ = (
            result.as_dict()
            | {"validation_images": len(held_out), "resolved": dict(self.resolved_)}
            | tuned
        )
        self.training_log_ = result

    def _fitted(self) -> nn.Module:
        if self.model_ is None:
            raise RuntimeError(
                f"method {self.name!r} is not fitted: call fit() or load_state_dict() first"
            )
        return self.model_

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[Prediction]:
        model = self._fitted()
        device = self._device()
        model.to(device).eval()
        predictions = self.infer(model, [self.oriented(image) for image in images], device)
        if self.training_:
            for p in predictions:
                p.extras["training"] = dict(self.training_)
        return predictions

    def predict(self, image: np.ndarray) -> Prediction:
        return self.predict_batch([image])[0]

    def state_dict(self) -> dict[str, np.ndarray]:
        from plugins.methods.deep.checkpoint import to_numpy

        state = to_numpy(self._fitted().state_dict(), prefix="model.")
        state["meta.num_classes"] = np.array([self.num_classes_], dtype=np.int64)
        if self.training_:
            # the training summary (budget, steps, stop reason, resolved recipe, chosen
            # decoding) travels with the fitted state, so the cell's model file records it
            text = json.dumps(self.training_, sort_keys=True, default=str)
            state["meta.training_json"] = np.frombuffer(text.encode(), dtype=np.uint8).copy()
        state.update(self.extra_state())
        return state

    def extra_state(self) -> dict[str, np.ndarray]:
        """Fitted values beyond the network (``meta.*`` arrays), none by default."""
        return {}

    def load_extra_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore what :meth:`extra_state` saved."""

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        self._require()
        from plugins.methods.deep.checkpoint import from_numpy

        if "meta.num_classes" not in state:
            raise ValueError(
                f"method {self.name!r}: state has no 'meta.num_classes'; not saved by this method"
            )
        self.num_classes_ = int(np.asarray(state["meta.num_classes"]).ravel()[0])
        if "meta.training_json" in state:
            self.training_ = json.loads(np.asarray(state["meta.training_json"], dtype=np.uint8).tobytes())
            self.resolved_ = dict(self.training_.get("resolved") or {})
        self.load_extra_state(state)
        model = self.build(self.num_classes_)
        model.load_state_dict(from_numpy(state, prefix="model."))
        self.model_ = model.eval()
