from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from harness import DataError
from plugins.datasets.consep import CoNSeP


def labels() -> tuple[np.ndarray, np.ndarray]:
    inst = np.zeros((10, 10), np.int32)
    types = np.zeros((10, 10), np.int32)
    for k in range(1, 8):  # nucleus k has type k: one of each of the 7 classes
        inst[k, 1:4] = k
        types[k, 1:4] = k
    return inst, types


@pytest.fixture
def consep(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    inst, types = labels()
    for split, count in (("Train", 2), ("Test", 1)):
        (tmp_path / "CoNSeP" / split / "Images").mkdir(parents=True)
        (tmp_path / "CoNSeP" / split / "Labels").mkdir()
        (tmp_path / "CoNSeP" / split / "Overlay").mkdir()
        for n in range(1, count + 1):
            stem = f"{split.lower()}_{n}"
            Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)).save(
                tmp_path / "CoNSeP" / split / "Images" / f"{stem}.png"
            )
            centroids = np.array([[2.0, k] for k in range(1, 8)])  # (x, y)
            scipy.io.savemat(
                tmp_path / "CoNSeP" / split / "Labels" / f"{stem}.mat",
                {
                    "inst_map": inst.astype(np.float64),
                    "type_map": types,
                    "inst_type": np.arange(1, 8)[:, None],
                    "inst_centroid": centroids,
                },
            )
    return tmp_path


def test_round_trip_with_the_usual_merge(consep: Path) -> None:
    ds = CoNSeP(root=consep)
    assert ds.sample_ids("train") == ["train_1", "train_2"] and ds.sample_ids("test") == ["test_1"]
    sample = ds.load("test", "test_1")
    inst, _ = labels()
    np.testing.assert_array_equal(sample.instances, inst)
    # types 1..7 -> other, inflammatory, epithelial, epithelial, spindle, spindle, spindle
    assert [int(sample.classes[k, 1]) for k in range(1, 8)] == [1, 2, 3, 3, 4, 4, 4]
    raw = CoNSeP(root=consep, merge_classes=False).load("test", "test_1")
    assert [int(raw.classes[k, 1]) for k in range(1, 8)] == list(range(1, 8))
    assert len(CoNSeP(merge_classes=False).class_names) == 8 and len(ds.class_names) == 5
    assert "2 train tiles; the release has 27" in ds.verify()


def test_legacy_npy_labels(consep: Path) -> None:
    labels_dir = consep / "CoNSeP" / "Train" / "Labels"
    (labels_dir / "train_2.mat").unlink()
    inst, types = labels()
    np.save(labels_dir / "train_2.npy", np.stack([inst, types], axis=2))
    sample = CoNSeP(root=consep).load("train", "train_2")
    np.testing.assert_array_equal(sample.instances, inst)


def test_malformed_labels(consep: Path) -> None:
    labels_dir = consep / "CoNSeP" / "Train" / "Labels"
    scipy.io.savemat(labels_dir / "train_1.mat", {"inst_map": np.zeros((10, 10))})
    with pytest.raises(DataError, match=r"train_1\.mat lacks type_map"):
        CoNSeP(root=consep).load("train", "train_1")
    scipy.io.savemat(
        labels_dir / "train_1.mat", {"inst_map": np.zeros((4, 4)), "type_map": np.zeros((4, 4))}
    )
    with pytest.raises(DataError, match=r"train_1\.mat is 4×4 but its image is 10×10"):
        CoNSeP(root=consep).load("train", "train_1")
    (labels_dir / "train_2.mat").write_bytes(b"MATLAB 5.0 garbage")
    with pytest.raises(DataError, match=r"cannot read .*train_2\.mat"):
        CoNSeP(root=consep).load("train", "train_2")
    (consep / "CoNSeP" / "Test" / "Labels" / "test_1.mat").unlink()
    with pytest.raises(DataError, match=r"missing annotation for .*test_1\.png"):
        CoNSeP(root=consep).load("test", "test_1")
