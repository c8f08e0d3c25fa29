from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi

from harness import DataError
from plugins.datasets.glas import GlaS, parse_grades

from ._fixtures import GLAS_HEADER, write_glas

# ---- the real copy -------------------------------------------------------------------


def test_real_counts_glands_and_split_pieces(glas_root: Path) -> None:
    ds = GlaS(root=glas_root)
    assert ds.verify() == []
    counts, glands, multi_piece = {}, {}, 0
    for split in ds.splits:
        ids = ds.sample_ids(split)
        counts[split] = len(ids)
        glands[split] = 0
        for sid in ids:
            labels = ds.read_instances(split, sid)
            assert labels.dtype == np.int32
            present = np.unique(labels)
            glands[split] += int((present > 0).sum())
            for gid, box in enumerate(ndi.find_objects(labels), start=1):
                if box is not None and ndi.label(labels[box] == gid)[1] > 1:
                    multi_piece += 1
    assert counts == {"train": 85, "testA": 60, "testB": 20}
    assert glands == {"train": 769, "testA": 666, "testB": 95}
    assert multi_piece == 15  # kept as one gland each: ids are never re-derived


def test_real_samples_align_and_carry_grade_metadata(glas_root: Path) -> None:
    ds = GlaS(root=glas_root)
    assert ds.sample_ids("train")[:3] == ["train_1", "train_2", "train_3"]  # natural order
    sample = ds.load("testA", "testA_1")
    assert sample.image.shape == (522, 775, 3) and sample.image.dtype == np.uint8
    assert sample.instances is not None and sample.instances.shape == (522, 775)
    # Grade.csv's first rows read byte by byte: "testA_1,4, benign, adenomatous\rtestA_10,10, ..."
    assert sample.meta["patient"] == 4
    assert sample.meta["grade_glas"] == "benign"
    assert sample.meta["grade_sirinukunwattana"] == "adenomatous"
    assert sample.meta["spacing"] == (1.0, 1.0) and sample.meta["microns_per_pixel"] == 0.62005
    assert ds.load("testA", "testA_10").meta["grade_sirinukunwattana"] == "healthy"
    in_microns = GlaS(root=glas_root, spacing="micron").load("testB", "testB_1").meta["spacing"]
    assert in_microns == (0.62005, 0.62005)
    raw = np.asarray(Image.open(glas_root / "testA_1_anno.png"))
    np.testing.assert_array_equal(sample.instances, raw)
    # glands lie on the tissue, not on padding: the annotation matches the image it belongs to
    assert set(np.unique(raw)) == set(range(raw.max() + 1))


def test_real_grade_csv_parses_all_rows(glas_root: Path) -> None:
    grades = parse_grades(glas_root / "Grade.csv")
    assert len(grades) == 165
    assert {g.grade_glas for g in grades.values()} == {"benign", "malignant"}
    assert len({g.grade_sirinukunwattana for g in grades.values()}) == 5
    assert sum(g.grade_glas == "benign" for k, g in grades.items() if k.startswith("train")) == 37


# ---- the official format, written here ------------------------------------------------


@pytest.mark.parametrize("ext", [".bmp", ".png"])
def test_fixture_round_trip_nested_official_folder(tmp_path: Path, ext: str) -> None:
    folder = tmp_path / "glas" / "Warwick QU Dataset (Released 2016_07_08)"
    written = write_glas(folder, {"train": 11, "testA": 2, "testB": 1}, ext=ext)
    ds = GlaS(root=tmp_path / "glas")
    assert ds.sample_ids("train") == [f"train_{n}" for n in range(1, 12)]
    assert ds.sample_ids("testB") == ["testB_1"]
    sample = ds.load("train", "train_10")
    np.testing.assert_array_equal(sample.instances, written["train_10"])
    assert ndi.label(sample.instances == 1)[1] == 2  # two pieces, one id
    assert sample.meta["patient"] == 10 % 7 + 1
    assert sample.meta["grade_sirinukunwattana"] == "moderately-to-poorly differentated"
    assert sample.meta["source"] == f"train_10{ext}"
    assert "train_10_anno" not in ds.sample_ids("train")


def test_grade_csv_any_line_ending(tmp_path: Path) -> None:
    body = [
        GLAS_HEADER,
        "train_1,3, benign, healthy",
        "train_2,5, malignant, poorly differentiated",
    ]
    for newline in ("\r", "\n", "\r\n"):
        path = tmp_path / "Grade.csv"
        path.write_bytes(newline.join(body).encode())
        grades = parse_grades(path)
        assert grades["train_2"].patient == 5
        assert grades["train_2"].grade_sirinukunwattana == "poorly differentiated"


def test_palettised_annotation_keeps_indices(tmp_path: Path) -> None:
    written = write_glas(tmp_path, {"train": 1, "testA": 1, "testB": 1})
    labels = written["train_1"]
    pal = Image.fromarray(labels, mode="P")
    pal.putpalette([v for i in range(256) for v in ((i * 37) % 256, 0, 255 - i)])
    pal.save(tmp_path / "train_1_anno.bmp")
    np.testing.assert_array_equal(GlaS(root=tmp_path).read_instances("train", "train_1"), labels)


# ---- malformed input ------------------------------------------------------------------


@pytest.fixture
def small(tmp_path: Path) -> Path:
    write_glas(tmp_path, {"train": 2, "testA": 1, "testB": 1})
    return tmp_path


def test_truncated_image_names_the_file(small: Path) -> None:
    path = small / "train_1.bmp"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match="train_1.bmp"):
        GlaS(root=small).load("train", "train_1")


def test_annotation_of_wrong_size(small: Path) -> None:
    Image.fromarray(np.zeros((5, 5), np.uint8), mode="L").save(small / "train_2_anno.bmp")
    with pytest.raises(DataError, match=r"train_2_anno\.bmp.*5×5.*22×30"):
        GlaS(root=small).load("train", "train_2")


def test_missing_annotation(small: Path) -> None:
    (small / "testA_1_anno.bmp").unlink()
    with pytest.raises(DataError, match=r"missing annotation.*testA_1\.bmp.*testA_1_anno"):
        GlaS(root=small).load("testA", "testA_1")
    assert any("testA_1_anno" in p for p in GlaS(root=small).check_layout())


def test_missing_folder_says_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"(?s)Grade\.csv.*nowhere.*bench data fetch glas.*warwick"):
        GlaS(root=tmp_path / "nowhere").sample_ids("train")


def test_empty_and_malformed_grade_csv(small: Path) -> None:
    (small / "Grade.csv").write_bytes(b"")
    with pytest.raises(DataError, match="Grade.csv is empty"):
        GlaS(root=small).load("train", "train_1")
    (small / "Grade.csv").write_bytes(b"name,patient ID\rtrain_1,1\r")
    with pytest.raises(DataError, match="grade \\(glas"):
        GlaS(root=small).load("train", "train_1")
    (small / "Grade.csv").write_bytes((GLAS_HEADER + "\rtrain_1,x, benign, healthy\r").encode())
    with pytest.raises(DataError, match="line 2"):
        GlaS(root=small).load("train", "train_1")
