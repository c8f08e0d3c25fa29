from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness import DataError
from plugins.datasets.pannuke import PanNuke, masks_to_maps


def write_fold(
    root: Path, fold: int, images: np.ndarray, masks: np.ndarray, types: list[str]
) -> None:
    (root / f"Fold {fold}" / "images" / f"fold{fold}").mkdir(parents=True)
    (root / f"Fold {fold}" / "masks" / f"fold{fold}").mkdir(parents=True)
    np.save(root / f"Fold {fold}" / "images" / f"fold{fold}" / "images.npy", images.astype("<f8"))
    np.save(root / f"Fold {fold}" / "images" / f"fold{fold}" / "types.npy", np.array(types))
    np.save(root / f"Fold {fold}" / "masks" / f"fold{fold}" / "masks.npy", masks.astype("<f8"))


def patch_masks() -> np.ndarray:
    """8×8 patch: id 3512 in neoplastic and id 3512 again in connective; a void corner."""
    masks = np.zeros((8, 8, 6))
    masks[0:2, 0:2, 0] = 3512
    masks[5:7, 5:7, 2] = 3512
    masks[1, 1, 1] = 40  # also positive in inflammatory: the lower channel (neoplastic) wins
    masks[4, 0:3, 1] = 41
    masks[..., 5] = (masks[..., :5].sum(axis=2) == 0).astype(float)
    masks[7, 0, 5] = 0  # void pixel: all six channels zero
    return masks


@pytest.fixture
def pannuke(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    full = patch_masks()[None]
    empty = np.zeros((1, 8, 8, 6))  # the release's all-zero patches
    write_fold(
        tmp_path,
        1,
        rng.uniform(0, 255, (2, 8, 8, 3)),
        np.concatenate([full, empty]),
        ["Breast", "Colon"],
    )
    write_fold(tmp_path, 2, rng.uniform(0, 255, (1, 8, 8, 3)), full, ["Adrenal_gland"])
    write_fold(
        tmp_path,
        3,
        rng.uniform(0, 255, (3, 8, 8, 3)),
        np.repeat(full, 3, axis=0),
        ["Bile-duct"] * 3,
    )
    return tmp_path


def test_maps_by_hand() -> None:
    instances, classes, void = masks_to_maps(patch_masks())
    assert len(np.unique(instances)) - 1 == 3  # (0, 3512), (1, 41), (2, 3512); (1, 40) is hidden
    assert (
        (classes[0:2, 0:2] == 1).all()
        and (classes[4, 0:3] == 2).all()
        and (classes[5:7, 5:7] == 3).all()
    )
    assert instances[0, 0] != instances[5, 5]  # same stored id, different channels
    assert void.sum() == 1 and void[7, 0]


def test_round_trip_and_rotations(pannuke: Path) -> None:
    ds = PanNuke(root=pannuke)
    assert [len(ds.sample_ids(s)) for s in ds.splits] == [2, 1, 3]
    sample = ds.load("train", "fold1_0000")
    images = np.load(pannuke / "Fold 1" / "images" / "fold1" / "images.npy")
    np.testing.assert_array_equal(sample.image, np.rint(images[0]).astype(np.uint8))
    assert sample.meta["tissue"] == "Breast" and sample.classes is not None
    assert sample.ignore is not None and sample.ignore.sum() == 1
    empty = ds.load("train", "fold1_0001")
    assert empty.ignore is not None and empty.ignore.all() and not empty.instances.any()
    assert [PanNuke(root=pannuke, rotation=r).fold_of("train") for r in (1, 2, 3)] == [1, 2, 3]
    assert [PanNuke(root=pannuke, rotation=r).fold_of("test") for r in (1, 2, 3)] == [3, 3, 1]
    assert PanNuke(root=pannuke, rotation=2).fold_of("validation") == 1
    assert "fold 1 has 2 patches; the release has 2656" in ds.verify()
    with pytest.raises(ValueError, match="rotation"):
        PanNuke(rotation=4)


def test_malformed_folds(pannuke: Path) -> None:
    with pytest.raises(DataError, match="no patch 'fold1_0000' in split 'validation'"):
        PanNuke(root=pannuke).load("validation", "fold1_0000")
    np.save(pannuke / "Fold 2" / "masks" / "fold2" / "masks.npy", np.zeros((2, 8, 8, 6)))
    with pytest.raises(
        DataError, match=r"fold2/masks\.npy has shape \(2, 8, 8, 6\); expected \(1, 8, 8, 6\)"
    ):
        PanNuke(root=pannuke).sample_ids("validation")
    (pannuke / "Fold 3" / "images" / "fold3" / "types.npy").unlink()
    with pytest.raises(DataError, match=r"(?s)fold3/types\.npy.*bench data fetch pannuke"):
        PanNuke(root=pannuke).sample_ids("test")
    (pannuke / "Fold 1" / "images" / "fold1" / "images.npy").write_bytes(b"not numpy")
    with pytest.raises(DataError, match=r"cannot read .*fold1/images\.npy"):
        PanNuke(root=pannuke).sample_ids("train")
