from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness import DataError
from plugins.datasets.nucls import NuCLS

FOV_A = "TCGA-A2-A0CM-DX1_id-5ea40b05ddda5f839899743b_left-54812_top-58969_bottom-58979_right-54824"
FOV_B = "TCGA-E2-A1B1-DX1_id-5ea40b05ddda5f839899743c_left-100_top-200_bottom-210_right-212"
CSV_HEADER = ",raw_classification,main_classification,super_classification,type,xmin,ymin,xmax,ymax,coords_x,coords_y"


def object_mask() -> np.ndarray:
    """HistomicsTK object mode: ch0 class code, (ch1, ch2) the object pair."""
    mask = np.zeros((10, 12, 3), np.uint8)
    mask[:, 2:, 0] = 253  # FOV; columns 0-1 are outside it (code 0)
    mask[:, 2:, 1:] = (1, 2)  # the FOV rectangle is drawn first: pair (1, 2)
    mask[1:3, 3:5] = (1, 1, 3)  # tumor
    mask[4:6, 3:5] = (3, 1, 6)  # lymphocyte, pair (1, 6) ...
    mask[7:9, 3:5] = (99, 2, 3)  # unlabeled, pair (2, 3): same product 6, a different nucleus
    return mask


@pytest.fixture
def nucls(tmp_path: Path) -> Path:
    for name in ("rgb", "csv", "mask", "visualization", "train_test_splits"):
        (tmp_path / name).mkdir()
    rng = np.random.default_rng(0)
    for fov in (FOV_A, FOV_B):
        Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(
            tmp_path / "rgb" / f"{fov}.png"
        )
        Image.fromarray(object_mask()).save(tmp_path / "mask" / f"{fov}.png")
        (tmp_path / "csv" / f"{fov}.csv").write_text(
            CSV_HEADER
            + '\n0,tumor,tumor_nonMitotic,tumor_any,polyline,3,1,4,2,"3,4,4,3","1,1,2,2"\n'
            '1,lymphocyte,lymphocyte,sTIL,rectangle,3,4,4,5,"3,4,4,3,3","4,4,5,5,4"\n'
        )
    (tmp_path / "train_test_splits" / "fold_1_train.csv").write_text(
        ",slide_name,hospital,type,fold\n0,TCGA-A2-A0CM-DX1,A2,train,1\n"
    )
    (tmp_path / "train_test_splits" / "fold_1_test.csv").write_text(
        ",slide_name,hospital,type,fold\n0,TCGA-E2-A1B1-DX1,E2,test,1\n"
    )
    return tmp_path


def test_round_trip_classes_pairs_and_field_of_view(nucls: Path) -> None:
    ds = NuCLS(root=nucls)
    assert ds.sample_ids("train") == [FOV_A] and ds.sample_ids("test") == [FOV_B]
    sample = ds.load("test", FOV_B)
    assert len(np.unique(sample.instances)) - 1 == 3  # (1,6) and (2,3) stay apart
    assert sample.instances[4, 3] != sample.instances[7, 3]
    assert (sample.instances[0] == 0).all()  # FOV background (pair (1, 2)) is no nucleus
    assert (sample.classes[1, 3], sample.classes[4, 3], sample.classes[7, 3]) == (1, 3, 5)  # super
    assert (
        sample.ignore is not None and sample.ignore[:, :2].all() and not sample.ignore[:, 2:].any()
    )
    assert sample.meta["hospital"] == "E2" and sample.meta["boxes_only"] == 1
    assert sample.meta["nuclei_in_csv"] == 2
    main = NuCLS(root=nucls, class_level="main").load("test", FOV_B)
    assert (main.classes[1, 3], main.classes[4, 3], main.classes[7, 3]) == (1, 5, 8)


def test_malformed(nucls: Path) -> None:
    bad = object_mask()
    bad[0, 5, 0] = 77
    Image.fromarray(bad).save(nucls / "mask" / f"{FOV_A}.png")
    with pytest.raises(DataError, match=r"mask .*A0CM.*\.png has unknown class codes \[77\]"):
        NuCLS(root=nucls).load("train", FOV_A)
    (nucls / "csv" / f"{FOV_B}.csv").unlink()
    with pytest.raises(DataError, match=r"nucleus table .*csv/TCGA-E2"):
        NuCLS(root=nucls).load("test", FOV_B)
    (nucls / "train_test_splits" / "fold_1_test.csv").write_text(
        ",slide_name\n0,TCGA-A2-A0CM-DX1\n"
    )
    with pytest.raises(DataError, match="both train and test"):
        NuCLS(root=nucls).sample_ids("test")
    with pytest.raises(DataError, match=r"fold_2_train\.csv"):
        NuCLS(root=nucls, fold=2).sample_ids("train")
