"""The recipe of the semantic deep methods: rim target, watershed decoding, test-time
augmentation, scale and selection resolution, and budget step accounting."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

from harness import Budget, RunContext
from plugins.methods.deep import engine
from plugins.methods.deep.augment import Augment
from plugins.methods.deep.data import TrainingSet
from plugins.methods.deep.inference import TTA, forward_tta, tta_apply, tta_invert
from plugins.methods.deep.recipe import (
    Decode,
    auto_rim,
    auto_scale,
    decode_rim,
    median_diameter,
    resolve_selection,
    rim_encoding,
    selection_score,
)


def two_touching_squares() -> np.ndarray:
    labels = np.zeros((16, 20), dtype=np.int32)
    labels[4:12, 2:10] = 1  # 8×8
    labels[4:12, 10:18] = 2  # 8×8, sharing the edge between columns 9 and 10
    return labels


# ---- target encoding ----------------------------------------------------------------------


@pytest.mark.parametrize(("rim", "interior"), [(1, 8 * 8), (2, 6 * 6), (3, 4 * 4)])
def test_rim_of_a_lone_square_is_its_outer_band(rim: int, interior: int) -> None:
    labels = np.zeros((20, 20), dtype=np.int32)
    labels[5:15, 5:15] = 7
    encoded = rim_encoding(labels, rim)
    assert np.count_nonzero(encoded == 1) == interior
    assert np.count_nonzero(encoded == 2) == 100 - interior
    assert np.count_nonzero(encoded == 0) == 400 - 100
    inner = slice(5 + rim, 15 - rim)
    assert (encoded[inner, inner] == 1).all()


def test_touching_squares_are_parted_by_their_rims() -> None:
    encoded = rim_encoding(two_touching_squares(), 1)
    # each square keeps rows 5..10 and its columns away from the outline and the contact
    assert np.count_nonzero(encoded == 1) == 2 * 6 * 6
    assert np.count_nonzero(encoded == 2) == 2 * 64 - 2 * 36
    assert (encoded[4:12, 9] == 2).all() and (encoded[4:12, 10] == 2).all()
    _, n = ndi.label(encoded == 1)
    assert n == 2


def test_the_image_border_makes_no_rim() -> None:
    labels = np.zeros((10, 10), dtype=np.int32)
    labels[0:5, 0:5] = 1
    encoded = rim_encoding(labels, 1)
    assert np.count_nonzero(encoded == 1) == 4 * 4  # only the sides facing background
    assert np.count_nonzero(encoded == 2) == 25 - 16


def test_rim_width_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rim"):
        rim_encoding(np.zeros((4, 4), dtype=np.int32), 0)


def test_training_set_encodes_after_resizing() -> None:
    from harness import Sample

    labels = np.zeros((40, 40), dtype=np.int32)
    labels[8:32, 8:32] = 3  # 24×24, 12×12 at half scale
    sample = Sample("a", np.zeros((40, 40, 3), dtype=np.uint8), instances=labels)
    data = TrainingSet.from_samples([sample], "rim", scale=0.5, rim=1)
    assert data.images[0].shape == (20, 20, 3) and data.labels[0].shape == (20, 20)
    assert np.count_nonzero(data.labels[0] == 1) == 10 * 10
    assert np.count_nonzero(data.labels[0] == 2) == 144 - 100


# ---- decoding -----------------------------------------------------------------------------


def one_hot(encoded: np.ndarray) -> np.ndarray:
    return np.stack([(encoded == k).astype(np.float32) for k in range(3)])


def test_watershed_decoding_separates_two_touching_squares() -> None:
    squares = two_touching_squares()
    foreground, instances = decode_rim(one_hot(rim_encoding(squares, 1)), Decode(min_size=1))
    assert (foreground == (squares > 0)).all()
    assert len(np.unique(instances[instances > 0])) == 2
    for k in (1, 2):
        ids = np.unique(instances[squares == k])
        assert len(ids) == 1 and ids[0] > 0
        assert (instances == ids[0]).sum() == 64


def test_foreground_without_interior_is_an_object_and_small_ones_go() -> None:
    encoded = np.zeros((30, 30), dtype=np.int64)
    encoded[2:12, 2:12] = 2  # all rim: no seed, still one object (100 px)
    encoded[20:22, 20:22] = 2  # 4 px
    _, kept = decode_rim(one_hot(encoded), Decode(min_size=1))
    assert kept.max() == 2
    _, filtered = decode_rim(one_hot(encoded), Decode(min_size=10))
    assert filtered.max() == 1 and np.count_nonzero(filtered) == 100


def test_decode_round_trips_through_an_array() -> None:
    params = Decode(0.4, 0.6, 50)
    assert Decode.from_array(params.as_array()) == params


# ---- test-time augmentation ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TTA))
def test_every_tta_transform_is_inverted(name: str) -> None:
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7)
    for turns, flip in TTA[name]:
        y = tta_apply(x, turns, flip)
        assert torch.equal(tta_invert(y, turns, flip), x)
    images = {tta_apply(x[:, :, :5, :5], t, f).numpy().tobytes() for t, f in TTA[name]}
    assert len(images) == len(TTA[name])  # distinct transforms


@pytest.mark.parametrize("name", sorted(TTA))
def test_tta_of_an_equivariant_function_is_the_function(name: str) -> None:
    x = torch.rand(1, 2, 6, 9, generator=torch.Generator().manual_seed(0))

    def blur(t: torch.Tensor) -> torch.Tensor:  # symmetric 3×3 box: commutes with flips/turns
        return torch.nn.functional.avg_pool2d(t, 3, stride=1, padding=1, count_include_pad=True)

    torch.testing.assert_close(forward_tta(blur, x, name), blur(x))


def test_tta_averages_a_function_that_is_not_equivariant() -> None:
    x = torch.zeros(1, 1, 4, 4)

    def ramp(t: torch.Tensor) -> torch.Tensor:  # adds the column index
        return t + torch.arange(t.shape[-1], dtype=t.dtype)

    averaged = forward_tta(ramp, x, "flips")  # columns c and 3-c each counted twice
    torch.testing.assert_close(averaged, torch.full_like(x, 1.5))


# ---- scale, rim width, selection ----------------------------------------------------------


def test_median_diameter_and_automatic_scale() -> None:
    labels = np.zeros((50, 50), dtype=np.int32)
    labels[0:10, 0:10] = 1
    labels[20:30, 20:30] = 2
    labels[40:42, 40:42] = 3
    d = median_diameter([labels])
    assert d == pytest.approx(2 * math.sqrt(100 / math.pi))
    assert auto_scale(d) == 1.0 and auto_scale(130.0) == 0.5
    assert auto_rim(130.0, 0.5) == 4 and auto_rim(d, 1.0) == 1
    assert median_diameter([np.zeros((3, 3), dtype=np.int32)]) == 0.0


def test_selection_follows_the_dataset_primary_metric() -> None:
    assert resolve_selection("auto", ("object_f1", "object_dice"), True) == "object_f1"
    assert resolve_selection("auto", ("dsb_map", "aji", "dice"), True) == "dsb_map"
    assert resolve_selection("auto", ("pq", "aji", "dice"), True) == "aji"
    assert resolve_selection("auto", ("iou", "dice"), False) == "dice"
    assert resolve_selection("auto", (), True) == "object_f1"
    assert resolve_selection("dice", ("object_f1",), True) == "dice"
    with pytest.raises(ValueError, match="select"):
        resolve_selection("hd95", (), True)


def test_object_f1_selection_pools_counts() -> None:
    squares = two_touching_squares()
    merged = (squares > 0).astype(np.int32)  # one object covering both squares
    # its partner is a square it covers fully (64/64 > 1/2): 1 TP, 0 FP, 1 FN; F1 = 2/3
    assert selection_score("object_f1", [merged], [squares]) == pytest.approx(2 / 3)
    assert selection_score("object_f1", [squares, squares], [squares, squares]) == 1.0


# ---- budget step accounting -----------------------------------------------------------------


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _train(budget: Budget, steps: int = 0) -> engine.TrainResult:
    from harness import Sample

    image = np.zeros((8, 8, 3), dtype=np.uint8)
    labels = np.zeros((8, 8), dtype=np.int32)
    labels[2:6, 2:6] = 1
    data = TrainingSet.from_samples([Sample("a", image, instances=labels)], "foreground")

    def loss(model: torch.nn.Module, patches: list, device: torch.device) -> torch.Tensor:
        x = torch.from_numpy(np.stack([p.image for p in patches])).permute(0, 3, 1, 2)
        return model(x).square().mean()

    config = engine.TrainConfig(batch_size=1, patch_size=8, augment=Augment.named("none"), steps=steps)
    return engine.train(_Tiny(), data, loss, lambda m: 0.0, config, RunContext(budget=budget), torch.device("cpu"))


def test_a_step_budget_runs_exactly_its_steps() -> None:
    result = _train(Budget("b", max_steps=7, max_seconds=3600))
    assert (result.steps, result.stopped_by, len(result.losses)) == (7, "max_steps", 7)
    assert result.budget["max_steps"] == 7


def test_method_steps_replace_the_budget_steps() -> None:
    result = _train(Budget("b", max_steps=7, max_seconds=3600), steps=3)
    assert (result.steps, result.stopped_by) == (3, "max_steps")
    assert result.budget == {"name": "b+steps=3", "max_steps": 3, "max_seconds": 3600}


def test_method_steps_keep_the_cap_per_step() -> None:
    budget = Budget("long", max_steps=150, max_seconds=1800)
    assert engine.effective_budget(budget, 450).max_seconds == 5400  # 12 s a step, as budgeted
    assert engine.effective_budget(budget, 50).max_seconds == 1800  # fewer steps: the whole cap
    assert engine.effective_budget(Budget("s", max_seconds=60), 10).max_seconds == 60  # seconds-only


def test_the_seconds_cap_is_recorded_when_it_ends_training() -> None:
    result = _train(Budget("b", max_steps=10**9, max_seconds=1e-9))
    assert result.stopped_by == "max_seconds" and result.steps < 10**9


def test_the_schedule_follows_steps_not_seconds() -> None:
    budget = Budget("b", max_steps=100, max_seconds=10)
    assert engine.progress(budget, 50, 9.5) == 0.5
    assert engine.progress(Budget("s", max_seconds=10), 50, 5.0) == 0.5
    assert engine.stop_reason(budget, 99, 9.0) == ""
    assert engine.stop_reason(budget, 100, 9.0) == "max_steps"
    assert engine.stop_reason(budget, 20, 10.0) == "max_seconds"
    with pytest.raises(ValueError, match="steps"):
        engine.effective_budget(budget, -1)


def test_long_budget_counts_steps() -> None:
    from harness import BUDGETS

    assert BUDGETS["long"].max_steps and BUDGETS["long"].max_steps > BUDGETS["quick"].max_steps  # type: ignore[operator]


def test_the_resolved_recipe_is_recorded(trained) -> None:  # type: ignore[no-untyped-def]
    from plugins.methods.deep.recipe import FOREGROUND_LEVELS, INTERIOR_LEVELS, min_sizes

    _, method = trained("unet")
    record = method.training_
    resolved = record["resolved"]
    assert resolved["encoding"] == "rim" and method.num_classes_ == 3
    assert resolved["select"] == "object_f1"  # instance references, no dataset seen
    assert resolved["scale"] == auto_scale(resolved["median_object_diameter"])
    assert resolved["rim"] == auto_rim(resolved["median_object_diameter"], resolved["scale"])
    decode = record["decode"]
    assert decode["foreground"] in FOREGROUND_LEVELS and decode["interior"] in INTERIOR_LEVELS
    sizes = min_sizes(resolved["median_object_diameter"])
    assert decode["min_size"] in sizes
    assert record["decode_tried"] == len(FOREGROUND_LEVELS) * len(INTERIOR_LEVELS) * len(sizes)


def test_foreground_encoding_keeps_the_binary_head() -> None:
    from harness import Sample
    from plugins.methods.deep import UNet

    labels = np.zeros((8, 8), dtype=np.int32)
    labels[2:6, 2:6] = 1
    method = UNet(depth=2, width=4, encoding="foreground")
    method.resolved_ = method.resolve([Sample("a", np.zeros((8, 8, 3), np.uint8), instances=labels)])
    assert method.resolved_["encoding"] == "foreground" and method.resolved_["rim"] == 0
    assert method.output_classes([]) == 1
    with pytest.raises(ValueError, match="encoding"):
        UNet(encoding="contour")
    with pytest.raises(ValueError, match="test-time"):
        UNet(tta="spin")


def test_the_training_summary_travels_with_the_state(trained) -> None:  # type: ignore[no-untyped-def]
    import json

    case, method = trained("unet")
    restored = case.make()
    restored.load_state_dict(method.state_dict())
    assert restored.training_ == json.loads(json.dumps(method.training_, default=str))
    assert restored.resolved_["encoding"] == "rim" and restored.decode_ == method.decode_


def test_min_sizes_follow_the_median_object_area() -> None:
    from plugins.methods.deep.recipe import min_sizes

    # diameter 20: area 100 pi = 314.16; 2 % = 6.28, 5 % = 15.7, 10 % = 31.4, 20 % = 62.8, 35 % = 110.0
    assert min_sizes(20.0) == (0, 6, 16, 31, 63, 110)
    # no objects seen: only "keep everything"
    assert min_sizes(0.0) == (0,)


def test_choose_decoding_drops_fragments_smaller_than_the_objects() -> None:
    from plugins.methods.deep.recipe import Decode, choose_decoding, decode_rim

    # One 20 x 20 object and a 3 x 3 fragment, both confidently interior; the reference has
    # only the object.  Keeping the fragment: 1 TP, 1 FP, object F1 2/3; a min_size above 9
    # pixels and at most 400 drops it: F1 1.  The grid for a 20-pixel median diameter has
    # min sizes 0, 6, 16, ...; the first to drop the fragment is 16.
    probabilities = np.zeros((3, 40, 40), dtype=np.float32)
    probabilities[0] = 1.0
    for sl in (np.s_[5:25, 5:25], np.s_[30:33, 30:33]):
        probabilities[:, sl[0], sl[1]] = np.array([0.0, 1.0, 0.0])[:, None, None]
    reference = np.zeros((40, 40), dtype=np.int32)
    reference[5:25, 5:25] = 1
    kept = decode_rim(probabilities, Decode(0.4, 0.3, 0))[1]
    assert kept.max() == 2
    best, score, tried = choose_decoding("object_f1", [probabilities], [reference], 20.0)
    assert score == 1.0 and best == Decode(0.4, 0.3, 16)
    assert dict((tuple(p.values()), s) for p, s in tried)[(0.4, 0.3, 0)] == pytest.approx(2 / 3)


def test_selection_references_are_the_foreground_for_dice_and_the_objects_otherwise() -> None:
    from harness import Sample
    from plugins.methods.deep.recipe import selection_references

    sample = Sample("s", np.zeros((2, 2, 3), dtype=np.uint8), instances=np.array([[0, 2], [3, 0]], dtype=np.int32))
    (dice,) = selection_references("dice", [sample])
    assert dice.dtype == np.int32 and dice.tolist() == [[0, 1], [1, 0]]
    (objects,) = selection_references("dsb_map", [sample])
    assert objects.tolist() == [[0, 2], [3, 0]]


def _disk_image(dark_nuclei: bool) -> np.ndarray:
    """64² RGB: one disk of radius 10 on a background covering most of the image."""
    yy, xx = np.mgrid[:64, :64]
    disk = (yy - 32) ** 2 + (xx - 32) ** 2 <= 100
    background, nucleus = (220, 60) if dark_nuclei else (20, 200)
    grey = np.where(disk, nucleus, background).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


@pytest.mark.parametrize(
    ("polarity", "dark_nuclei", "inverted"),
    [
        ("none", True, False),
        ("auto", True, True),
        ("auto", False, False),
        ("dark", False, True),
        ("bright", True, False),
    ],
)
def test_polarity_inverts_images_whose_nuclei_are_dark(
    polarity: str, dark_nuclei: bool, inverted: bool
) -> None:
    from plugins.methods.deep import UNet

    image = _disk_image(dark_nuclei)
    seen = UNet(polarity=polarity).oriented(image)
    expected = 255 - image if inverted else image
    assert seen.dtype == np.uint8
    np.testing.assert_array_equal(seen, expected)


def test_an_unknown_polarity_is_refused_by_name() -> None:
    from plugins.methods.deep import UNet

    with pytest.raises(ValueError, match=r"method 'unet': unknown polarity 'inverse'"):
        UNet(polarity="inverse")


def test_prediction_sees_the_oriented_image() -> None:
    from plugins.methods.deep import UNet

    method = UNet(polarity="auto")
    method.model_ = torch.nn.Identity()
    method._device = lambda: torch.device("cpu")  # type: ignore[method-assign]
    seen: list[np.ndarray] = []
    method.infer = lambda model, images, device: seen.extend(images) or []  # type: ignore[method-assign]
    brightfield, fluorescence = _disk_image(True), _disk_image(False)
    method.predict_batch([brightfield, fluorescence])
    np.testing.assert_array_equal(seen[0], 255 - brightfield)
    np.testing.assert_array_equal(seen[1], fluorescence)


def test_dense_tissue_is_inverted_though_most_of_it_is_nuclei() -> None:
    """Dense H&E: 60 % of the pixels are nuclei (grey 100) on a 220 background.  The median,
    100/255 = 0.39, is above the 0.25 of fluorescence, so the image is inverted, although the
    larger side of its Otsu threshold is the nuclei."""
    from plugins.methods.deep import UNet

    grey = np.full((50, 50), 220, dtype=np.uint8)
    grey[:30] = 100
    image = np.repeat(grey[..., None], 3, axis=2)
    np.testing.assert_array_equal(UNet(polarity="auto").oriented(image), 255 - image)
