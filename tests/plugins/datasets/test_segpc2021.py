from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness import DataError
from plugins.datasets.segpc2021 import SegPC2021


def cell(shape: tuple[int, int], top: int, left: int, three_channels: bool = False) -> np.ndarray:
    """A 4×4 cell: cytoplasm 20 around a 2×2 nucleus 40."""
    mask = np.zeros(shape, np.uint8)
    mask[top : top + 4, left : left + 4] = 20
    mask[top + 1 : top + 3, left + 1 : left + 3] = 40
    return np.repeat(mask[..., None], 3, axis=2) if three_channels else mask


@pytest.fixture
def segpc(tmp_path: Path) -> Path:
    # nested as unzipped, under a parent whose name contains "x" (breaks naive replace("x", "y"))
    base = tmp_path / "box_x" / "TCIA_SegPC_dataset" / "TCIA_SegPC_dataset"
    rng = np.random.default_rng(0)
    for _split, folder, ids in [
        ("train", base / "train", ["106", "1697"]),
        ("validation", base / "validation" / "validation", ["9736"]),
    ]:
        (folder / "x").mkdir(parents=True)
        (folder / "y").mkdir()
        for image_id in ids:
            Image.fromarray(rng.integers(0, 256, (12, 14, 3), dtype=np.uint8)).save(
                folder / "x" / f"{image_id}.bmp"
            )
            Image.fromarray(cell((12, 14), 1, 1)).save(folder / "y" / f"{image_id}_1.bmp")
            Image.fromarray(cell((12, 14), 6, 8, three_channels=True)).save(
                folder / "y" / f"{image_id}_3.bmp"
            )
    (base / "test" / "x").mkdir(parents=True)
    return tmp_path / "box_x"


def test_round_trip(segpc: Path) -> None:
    ds = SegPC2021(root=segpc)
    assert ds.sample_ids("train") == ["106", "1697"] and ds.sample_ids("validation") == ["9736"]
    sample = ds.load("validation", "9736")
    assert sample.image.shape == (12, 14, 3)
    assert sorted(np.unique(sample.instances).tolist()) == [0, 1, 3]  # k as given, with its gap
    assert (sample.instances[1:5, 1:5] == 1).all() and (sample.instances[6:10, 8:12] == 3).all()
    assert (sample.classes[2:4, 2:4] == 2).all() and sample.classes[1, 1] == 1  # nucleus, cytoplasm
    assert (sample.classes[7:9, 9:11] == 2).all() and int((sample.classes == 1).sum()) == 24
    assert "1 train" not in " ".join(ds.verify())
    assert "2 train images; the release has 298" in ds.verify()


def test_missing_annotation_and_wrong_size(segpc: Path) -> None:
    y = segpc / "TCIA_SegPC_dataset" / "TCIA_SegPC_dataset" / "train" / "y"
    (y / "106_1.bmp").unlink()
    (y / "106_3.bmp").unlink()
    with pytest.raises(DataError, match=r"missing annotation for .*106\.bmp.*106_<k>\.bmp"):
        SegPC2021(root=segpc).load("train", "106")
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(y / "1697_3.bmp")
    with pytest.raises(DataError, match=r"1697_3\.bmp is 3×3 but its image is 12×14"):
        SegPC2021(root=segpc).load("train", "1697")
    with pytest.raises(DataError, match="bench data fetch segpc2021"):
        SegPC2021(root=segpc / "none").sample_ids("train")
