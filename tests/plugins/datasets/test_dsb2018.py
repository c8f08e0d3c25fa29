from __future__ import annotations

import csv
import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness import DataError
from plugins.datasets._io import read_rgb
from plugins.datasets.dsb2018 import DSB2018, TYPES, image_type, known_types

from ._fixtures import write_dsb_image

SAMPLE_MANIFEST = (
    Path(__file__).resolve().parents[3] / "plugins/datasets/data/dsb2018_sample/manifest.csv"
)

# ---- the real copy -------------------------------------------------------------------


def test_real_counts_and_split(dsb_root: Path) -> None:
    folders = sorted((dsb_root / "stage1_train").iterdir())
    n_masks = sum(1 for f in folders for _ in (f / "masks").glob("*.png"))
    if len(folders) == 670:
        assert n_masks == 29461
    else:
        assert (len(folders), n_masks) == (337, 14844)
    ds = DSB2018(root=dsb_root)
    assert not ds.uses_stage1_test  # no stage-1 solution in the shared copy
    splits = {s: ds.sample_ids(s) for s in ds.splits}
    ids = [i for s in splits.values() for i in s]
    assert sorted(ids) == [f.name for f in folders] and len(set(ids)) == len(ids)
    for split in ds.splits:
        assert set(Counter(ds.types[i] for i in splits[split])) == set(TYPES), split
    if len(folders) == 337:  # 274 fluorescence, 55 histology, 8 brightfield: 20% / 10% each
        assert [len(splits[s]) for s in ("train", "validation", "test")] == [235, 34, 68]
    assert ds.fingerprint()["splits"] == splits
    assert DSB2018(root=dsb_root).sample_ids("test") == splits["test"]  # stable
    assert DSB2018(root=dsb_root, split_seed=1).sample_ids("test") != splits["test"]


def test_real_samples_match_the_embedded_sample_manifest(dsb_root: Path) -> None:
    with open(SAMPLE_MANIFEST, newline="") as fh:
        rows = [
            r for r in csv.DictReader(fh) if (dsb_root / "stage1_train" / r["image_id"]).is_dir()
        ]
    assert len(rows) >= 5
    ds = DSB2018(root=dsb_root)
    where = {i: s for s in ds.splits for i in ds.sample_ids(s)}
    for row in rows[:6]:
        image_id = row["image_id"]
        path = dsb_root / "stage1_train" / image_id / "images" / f"{image_id}.png"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row["source_sha256"]
        sample = ds.load(where[image_id], image_id)
        assert sample.image.shape == (int(row["height"]), int(row["width"]), 3)
        assert sample.image.dtype == np.uint8 and sample.instances is not None
        assert sample.instances.dtype == np.int32
        assert sample.instances.shape == sample.image.shape[:2]
        assert len(np.unique(sample.instances)) - 1 == int(row["nuclei"])
        assert sample.meta["type"] == row["type"]
        np.testing.assert_array_equal(sample.image, np.asarray(Image.open(path))[..., :3])


def test_real_type_table_matches_pixels(dsb_root: Path) -> None:
    table = known_types()
    ids = sorted(p.name for p in (dsb_root / "stage1_train").iterdir())[::7]
    for image_id in ids:
        image = read_rgb(
            dsb_root / "stage1_train" / image_id / "images" / f"{image_id}.png", "t", ""
        )
        assert image_type(image) == table[image_id], image_id


# ---- the official format, written here ------------------------------------------------

STYLES = {
    "fluorescence": lambda rng: np.repeat(rng.integers(0, 40, (12, 10, 1)), 3, axis=2),
    "brightfield": lambda rng: np.repeat(rng.integers(180, 255, (12, 10, 1)), 3, axis=2),
    "histology": lambda rng: rng.integers(150, 255, (12, 10, 3)),
}


def nucleus_masks() -> list[np.ndarray]:
    a = np.zeros((12, 10), bool)
    a[1:4, 1:3] = True
    b = np.zeros((12, 10), bool)
    b[6:9, 5:9] = True
    return [a, b]


@pytest.fixture
def dsb_copy(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for kind, make in STYLES.items():
        for k in range(3):
            image_id = hashlib.sha256(f"{kind}{k}".encode()).hexdigest()
            write_dsb_image(
                tmp_path / "stage1_train", image_id, make(rng).astype(np.uint8), nucleus_masks()
            )
    return tmp_path


def test_fixture_round_trip_and_stratified_split(dsb_copy: Path) -> None:
    ds = DSB2018(root=dsb_copy)
    assert ds.verify() == []
    for split in ds.splits:  # 3 images per type: one each in test, validation, train
        assert sorted(ds.types[i] for i in ds.sample_ids(split)) == sorted(TYPES)
    for split in ds.splits:
        for image_id in ds.sample_ids(split):
            sample = ds.load(split, image_id)
            assert sample.image.shape == (12, 10, 3)
            a, b = nucleus_masks()
            assert (sample.instances[a] == 1).all() and (sample.instances[b] == 2).all()
            assert (sample.instances[~(a | b)] == 0).all()


def test_rle_labels_replace_missing_mask_folders(dsb_copy: Path) -> None:
    ds = DSB2018(root=dsb_copy)
    image_id = ds.sample_ids("train")[0]
    expected = ds.load("train", image_id).instances
    for mask in (dsb_copy / "stage1_train" / image_id / "masks").iterdir():
        mask.unlink()
    (dsb_copy / "stage1_train" / image_id / "masks").rmdir()
    # column-major, 1-based: rows 1-3 of columns 1-2 -> starts 13, 25 (height 12)
    a_rle = "14 3 26 3"
    b_rle = " ".join(f"{12 * c + 6 + 1} 3" for c in range(5, 9))
    (dsb_copy / "stage1_train_labels.csv").write_text(
        f"ImageId,EncodedPixels\n{image_id},{a_rle}\n{image_id},{b_rle}\n"
    )
    np.testing.assert_array_equal(
        DSB2018(root=dsb_copy).load("train", image_id).instances, expected
    )


def test_stage1_test_with_solution(dsb_copy: Path) -> None:
    test_id = "a" * 64
    write_dsb_image(
        dsb_copy / "stage1_test",
        test_id,
        STYLES["histology"](np.random.default_rng(1)).astype(np.uint8),
        None,
    )
    (dsb_copy / "stage1_solution.csv").write_text(
        f"ImageId,EncodedPixels,Height,Width,Usage\n{test_id},14 3 26 3,12,10,Public\n"
    )
    ds = DSB2018(root=dsb_copy)
    assert ds.uses_stage1_test and ds.sample_ids("test") == [test_id]
    assert len(ds.sample_ids("train")) + len(ds.sample_ids("validation")) == 9
    sample = ds.load("test", test_id)
    assert int(sample.instances.sum()) == 6 and sample.meta["usage"] == ["Public"]
    assert DSB2018(root=dsb_copy, protocol="holdout").sample_ids("test") != [test_id]


# ---- malformed input ------------------------------------------------------------------


def first(ds: DSB2018) -> tuple[str, Path]:
    image_id = ds.sample_ids("train")[0]
    return image_id, ds.directory / "stage1_train" / image_id


def test_truncated_image(dsb_copy: Path) -> None:
    ds = DSB2018(root=dsb_copy)
    image_id, folder = first(ds)
    path = folder / "images" / f"{image_id}.png"
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(DataError, match=f"{image_id}.png"):
        ds.load("train", image_id)


def test_mask_of_wrong_size(dsb_copy: Path) -> None:
    ds = DSB2018(root=dsb_copy)
    image_id, folder = first(ds)
    bad = min((folder / "masks").iterdir())
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(bad)
    with pytest.raises(DataError, match=f"{bad.name}.*5×5.*12×10"):
        ds.load("train", image_id)
    assert any(bad.name in p and "differs in size" in p for p in ds.verify())


def test_missing_annotation_and_empty_or_bad_csv(dsb_copy: Path) -> None:
    ds = DSB2018(root=dsb_copy)
    image_id, folder = first(ds)
    for mask in (folder / "masks").iterdir():
        mask.unlink()
    with pytest.raises(DataError, match=r"no annotation for .*masks.*stage1_train_labels\.csv"):
        DSB2018(root=dsb_copy).load("train", image_id)
    labels = dsb_copy / "stage1_train_labels.csv"
    labels.write_text("")
    with pytest.raises(
        DataError, match=r"stage1_train_labels\.csv has header \(none: empty file\)"
    ):
        DSB2018(root=dsb_copy).load("train", image_id)
    labels.write_text(f"ImageId,EncodedPixels\n{image_id},1 2 3\n")
    with pytest.raises(DataError, match=r"stage1_train_labels\.csv line 2 .*odd number"):
        DSB2018(root=dsb_copy).load("train", image_id)


def test_missing_data_and_unknown_protocol(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"(?s)stage1_train.*bench data fetch dsb2018.*BBBC038"):
        DSB2018(root=tmp_path).sample_ids("train")
    with pytest.raises(DataError, match="stage1_solution.csv"):
        DSB2018(root=tmp_path, protocol="stage1").sample_ids("test")
    with pytest.raises(ValueError, match="protocol"):
        DSB2018(protocol="kaggle")  # type: ignore[arg-type]
