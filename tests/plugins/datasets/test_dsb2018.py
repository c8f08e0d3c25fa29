from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness import DataError
from plugins.datasets._io import read_rgb
from plugins.datasets.dsb2018 import DSB2018, TYPES, image_type, known_types

from ._fixtures import write_dsb_image

SAMPLE_MANIFEST = Path(__file__).resolve().parents[3] / "plugins/datasets/data/dsb2018_sample/manifest.csv"

# ---- the real copy -------------------------------------------------------------------


def test_real_stage1_protocol_counts_and_split(dsb_root: Path) -> None:
    """The complete stage 1: fit on stage1_train (validation carved out), test on stage1_test."""
    if not (dsb_root / "stage1_solution.csv").is_file():
        pytest.skip(f"no stage1_solution.csv in {dsb_root}; the holdout case is tested on fixtures")
    folders = sorted((dsb_root / "stage1_train").iterdir())
    n_masks = sum(1 for f in folders for _ in (f / "masks").glob("*.png"))
    assert (len(folders), n_masks) == (670, 29461)
    with open(dsb_root / "stage1_solution.csv", newline="") as fh:
        solution = Counter(row["ImageId"] for row in csv.DictReader(fh))
    test_folders = sorted(p.name for p in (dsb_root / "stage1_test").iterdir())
    assert (len(test_folders), sum(solution.values())) == (65, 4152)
    assert sorted(solution) == test_folders

    ds = DSB2018(root=dsb_root)
    assert ds.uses_stage1_test and ds.protocol_summary().startswith("stage1:")
    assert ds.sample_ids("test") == test_folders
    train, validation = ds.sample_ids("train"), ds.sample_ids("validation")
    assert sorted(train + validation) == [f.name for f in folders]
    assert not set(train) & set(validation)
    # 10% of each type (546 fluorescence, 108 histology, 16 brightfield), rounded
    assert Counter(ds.types[i] for i in validation) == {
        "fluorescence": 55,
        "histology": 11,
        "brightfield": 2,
    }
    assert ds.fingerprint()["splits"]["test"] == test_folders
    assert DSB2018(root=dsb_root, split_seed=1).sample_ids("validation") != validation


def test_real_stage1_test_images_load_with_their_solution(dsb_root: Path) -> None:
    """Every test image decodes (RGB and RGBA PNGs alike) with one object per solution row."""
    if not (dsb_root / "stage1_solution.csv").is_file():
        pytest.skip(f"no stage1_solution.csv in {dsb_root}")
    with open(dsb_root / "stage1_solution.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    objects, shapes = (
        Counter(r["ImageId"] for r in rows),
        {r["ImageId"]: (int(r["Height"]), int(r["Width"])) for r in rows},
    )
    modes = set()
    ds = DSB2018(root=dsb_root)
    for image_id in ds.sample_ids("test"):
        path = dsb_root / "stage1_test" / image_id / "images" / f"{image_id}.png"
        with Image.open(path) as im:
            modes.add(im.mode)
            expected = np.asarray(im.convert("RGB"))
        sample = ds.load("test", image_id)
        np.testing.assert_array_equal(sample.image, expected)
        assert sample.instances is not None and sample.instances.shape == shapes[image_id]
        assert len(np.unique(sample.instances)) - 1 == objects[image_id], image_id
        assert sample.meta["stage"] == "stage1_test" and sample.meta["type"] in TYPES
    assert {"RGB", "RGBA"} <= modes


def test_real_holdout_split_of_stage1_train(dsb_root: Path) -> None:
    ds = DSB2018(root=dsb_root, protocol="holdout")
    assert not ds.uses_stage1_test and ds.protocol_summary().startswith("holdout:")
    splits = {s: ds.sample_ids(s) for s in ds.splits}
    ids = [i for s in splits.values() for i in s]
    folders = sorted(p.name for p in (dsb_root / "stage1_train").iterdir())
    assert sorted(ids) == folders and len(set(ids)) == len(ids)
    for split in ds.splits:
        assert set(Counter(ds.types[i] for i in splits[split])) == set(TYPES), split
    assert ds.fingerprint()["splits"] == splits
    assert DSB2018(root=dsb_root, protocol="holdout").sample_ids("test") == splits["test"]


def test_real_samples_match_the_embedded_sample_manifest(dsb_root: Path) -> None:
    with open(SAMPLE_MANIFEST, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if (dsb_root / "stage1_train" / r["image_id"]).is_dir()]
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
    """The packaged table covers every released image and agrees with image_type()."""
    table = known_types()
    for stage in ("stage1_train", "stage1_test"):
        if not (dsb_root / stage).is_dir():
            continue
        ids = sorted(p.name for p in (dsb_root / stage).iterdir())
        assert set(ids) <= set(table), stage
        for image_id in ids[::9]:
            image = read_rgb(dsb_root / stage / image_id / "images" / f"{image_id}.png", "t", "")
            assert image_type(image) == table[image_id], image_id


def kaggle_decode(rows: list[str], shape: tuple[int, int]) -> np.ndarray:
    """Reference RLE decode (Kaggle convention: 1-based starts, pixels numbered down each
    column, then across); objects numbered 1..N in file order, empty rows skipped."""
    flat = np.zeros(shape[0] * shape[1], dtype=np.int32)
    index = 0
    for encoded in rows:
        numbers = [int(t) for t in encoded.split()]
        if numbers:
            index += 1
        for start, length in zip(numbers[0::2], numbers[1::2]):
            assert not flat[start - 1 : start - 1 + length].any()  # the solution has no overlaps
            flat[start - 1 : start - 1 + length] = index
    return flat.reshape(shape, order="F")


def test_real_stage1_test_labels_match_a_hand_decode(dsb_root: Path) -> None:
    """All 65 stage-1 test label maps equal the reference decode of stage1_solution.csv."""
    if not (dsb_root / "stage1_solution.csv").is_file():
        pytest.skip(f"no stage1_solution.csv in {dsb_root}")
    rows: dict[str, list[str]] = {}
    shapes: dict[str, tuple[int, int]] = {}
    with open(dsb_root / "stage1_solution.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            rows.setdefault(row["ImageId"], []).append(row["EncodedPixels"])
            shapes[row["ImageId"]] = (int(row["Height"]), int(row["Width"]))
    ds = DSB2018(root=dsb_root)
    assert ds.sample_ids("test") == sorted(rows)
    for image_id in ds.sample_ids("test"):
        sample = ds.load("test", image_id)
        assert sample.instances is not None and sample.instances.dtype == np.int32
        np.testing.assert_array_equal(sample.instances, kaggle_decode(rows[image_id], shapes[image_id]))


def test_real_stage1_train_labels_match_the_mask_files(dsb_root: Path) -> None:
    """Every 10th stage1_train label map equals its mask PNGs painted in MaskId order (first
    mask keeps a shared pixel), decoded here with PIL alone."""
    ds = DSB2018(root=dsb_root)
    ids = sorted(ds.sample_ids("train") + ds.sample_ids("validation"))[::10]
    for image_id in ids:
        folder = dsb_root / "stage1_train" / image_id
        image = np.asarray(Image.open(folder / "images" / f"{image_id}.png"))
        expected = np.zeros(image.shape[:2], dtype=np.int32)
        for index, path in enumerate(sorted((folder / "masks").glob("*.png")), start=1):
            mask = np.asarray(Image.open(path)) > 0
            expected[mask & (expected == 0)] = index
        split = "train" if image_id in ds.sample_ids("train") else "validation"
        sample = ds.load(split, image_id)
        np.testing.assert_array_equal(sample.instances, expected)
        np.testing.assert_array_equal(sample.image, image[..., :3])


def test_real_dataset_classifies_no_image_from_pixels(dsb_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The packaged table types every released image: planning and loading never call
    image_type (which would decode the image a second time)."""

    def refuse(image: np.ndarray) -> str:
        raise AssertionError("image_type called for an image the table holds")

    monkeypatch.setattr("plugins.datasets.dsb2018.image_type", refuse)
    for protocol in ("auto", "holdout"):
        ds = DSB2018(root=dsb_root, protocol=protocol)  # type: ignore[arg-type]
        ids = {split: ds.sample_ids(split) for split in ds.splits}
        assert sum(map(len, ids.values())) == len(ds.train_ids) + (65 if ds.uses_stage1_test else 0)
        for split, members in ids.items():
            assert ds.load(split, members[0]).meta["type"] in TYPES


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
            write_dsb_image(tmp_path / "stage1_train", image_id, make(rng).astype(np.uint8), nucleus_masks())
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
    np.testing.assert_array_equal(DSB2018(root=dsb_copy).load("train", image_id).instances, expected)


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


def test_stage1_test_images_of_every_channel_layout(dsb_copy: Path) -> None:
    """Test PNGs may be RGB, RGBA or grey; each is read as the same H×W×3 image."""
    grey = np.random.default_rng(2).integers(0, 40, (12, 10), dtype=np.uint8)
    layouts = {"1" * 64: ("L", grey), "2" * 64: ("RGB", np.repeat(grey[..., None], 3, axis=2))}
    layouts["3" * 64] = ("RGBA", np.dstack([np.repeat(grey[..., None], 3, axis=2), grey * 0 + 255]))
    lines = ["ImageId,EncodedPixels,Height,Width,Usage"]
    for image_id, (mode, pixels) in layouts.items():
        (dsb_copy / "stage1_test" / image_id / "images").mkdir(parents=True)
        Image.fromarray(pixels, mode=mode).save(dsb_copy / "stage1_test" / image_id / "images" / f"{image_id}.png")
        lines.append(f"{image_id},14 3 26 3,12,10,Public")
    (dsb_copy / "stage1_solution.csv").write_text("\n".join(lines) + "\n")
    ds = DSB2018(root=dsb_copy)
    assert ds.verify() == []
    for image_id in layouts:
        sample = ds.load("test", image_id)
        np.testing.assert_array_equal(sample.image, np.repeat(grey[..., None], 3, axis=2))
        assert sample.meta["type"] == "fluorescence"


def test_rgba_images_keep_their_colour_channels(tmp_path: Path) -> None:
    """Alpha is dropped, whatever its value: the RGB bands come back unchanged (and writable)."""
    pixels = np.random.default_rng(4).integers(0, 256, (7, 9, 4), dtype=np.uint8)
    Image.fromarray(pixels, mode="RGBA").save(tmp_path / "x.png")
    image = read_rgb(tmp_path / "x.png", "t", "")
    np.testing.assert_array_equal(image, pixels[..., :3])
    assert image.flags.c_contiguous and image.flags.writeable


def test_overlapping_and_non_grey_mask_files(dsb_copy: Path) -> None:
    """Where nucleus PNGs overlap, the first in MaskId order keeps the pixel; a mask stored as
    RGB, 1-bit or 16-bit counts its channel-0 nonzero pixels, like an 8-bit grey one."""
    ds = DSB2018(root=dsb_copy)
    image_id, folder = first(ds)
    a, b = sorted((folder / "masks").iterdir())
    grown = np.zeros((12, 10), bool)
    grown[2:8, 2:7] = True  # covers part of nucleus a (rows 1-3, columns 1-2) and of b
    Image.fromarray(np.where(grown, 255, 0).astype(np.uint8), mode="L").save(b)
    rgb = np.zeros((12, 10, 3), np.uint8)
    rgb[10:12, 0:3, 0] = 7
    rgb[0, 9, 1] = 255  # channel 1 only: not part of the nucleus
    Image.fromarray(rgb, mode="RGB").save(folder / "masks" / "c.png")
    bit = np.zeros((12, 10), bool)
    bit[0:2, 8:10] = True
    Image.fromarray(bit).save(folder / "masks" / "d.png")
    wide = np.zeros((12, 10), np.uint16)
    wide[9, 9] = 300
    wide[4, 2] = 300  # already held by a and b
    Image.fromarray(wide).save(folder / "masks" / "e.png")
    expected = np.zeros((12, 10), np.int32)
    expected[1:4, 1:3] = 1
    expected[2:8, 2:7][expected[2:8, 2:7] == 0] = 2
    expected[10:12, 0:3] = 3
    expected[0:2, 8:10] = 4
    expected[9, 9] = 5
    np.testing.assert_array_equal(ds.load("train", image_id).instances, expected)


def test_solution_and_test_folders_must_agree(dsb_copy: Path) -> None:
    write_dsb_image(
        dsb_copy / "stage1_test", "b" * 64, STYLES["brightfield"](np.random.default_rng(3)).astype(np.uint8), None
    )
    (dsb_copy / "stage1_solution.csv").write_text(
        "ImageId,EncodedPixels,Height,Width,Usage\n" + "c" * 64 + ",1 2,12,10,Public\n"
    )
    problems = DSB2018(root=dsb_copy).verify()
    assert any("no rows for stage1_test image " + "b" * 64 in p for p in problems), problems
    assert any("c" * 64 + ", which is not in" in p for p in problems), problems


def test_an_unreadable_image_fails_only_itself(dsb_copy: Path) -> None:
    """Planning (image types, splits) survives an unreadable image outside the type table."""
    ds = DSB2018(root=dsb_copy)
    victim = ds.sample_ids("train")[0]
    path = dsb_copy / "stage1_train" / victim / "images" / f"{victim}.png"
    path.write_bytes(b"not a png")
    ds = DSB2018(root=dsb_copy)
    ids = {s: ds.sample_ids(s) for s in ds.splits}
    assert ds.types[victim] == "unreadable"
    split = next(s for s, members in ids.items() if victim in members)
    with pytest.raises(DataError, match=f"{victim}.png"):
        ds.load(split, victim)
    others = [(s, i) for s, members in ids.items() for i in members if i != victim]
    assert len(others) == 8 and all(ds.load(s, i).instances is not None for s, i in others)


def test_images_outside_the_table_are_classified_once(dsb_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second dataset object reuses the pixel types; a rewritten image is classified again."""
    from plugins.datasets import dsb2018

    calls: list[tuple[int, ...]] = []

    def counting(image: np.ndarray) -> str:
        calls.append(image.shape)
        return image_type(image)

    monkeypatch.setattr(dsb2018, "image_type", counting)
    first_types = DSB2018(root=dsb_copy).types
    assert len(calls) == 9 and sorted(Counter(first_types.values()).values()) == [3, 3, 3]
    assert DSB2018(root=dsb_copy).types == first_types and len(calls) == 9
    victim = sorted(first_types)[0]
    path = dsb_copy / "stage1_train" / victim / "images" / f"{victim}.png"
    Image.fromarray(np.full((12, 10, 3), 250, np.uint8)).save(path)  # now bright and grey
    assert DSB2018(root=dsb_copy).types[victim] == "brightfield" and len(calls) == 10


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
    with pytest.raises(DataError, match=r"stage1_train_labels\.csv has header \(none: empty file\)"):
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


def test_data_info_states_the_protocol(dsb_copy: Path) -> None:
    from click.testing import CliRunner

    from harness.commands.data import data

    def protocol() -> str:
        result = CliRunner().invoke(data, ["info", "dsb2018", "--root", str(dsb_copy), "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)["protocol"]

    assert protocol().startswith("holdout: stage1_solution.csv or stage1_test/ is absent")
    write_dsb_image(
        dsb_copy / "stage1_test", "d" * 64, STYLES["histology"](np.random.default_rng(4)).astype(np.uint8), None
    )
    (dsb_copy / "stage1_solution.csv").write_text(
        "ImageId,EncodedPixels,Height,Width,Usage\n" + "d" * 64 + ",1 2,12,10,Public\n"
    )
    assert protocol().startswith("stage1: fit on stage1_train")


def test_a_submission_csv_is_read_for_bench_score(dsb_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    from harness.store import Store
    from harness.submitted import SubmissionError, import_predictions
    from plugins.datasets.rle import rle_encode

    ds = DSB2018(root=dsb_copy)
    test_ids = ds.sample_ids("test")
    lines = ["ImageId,EncodedPixels"]
    for image_id in test_ids:
        reference = ds.load("test", image_id).instances
        lines += [f"{image_id},{rle_encode(reference == k)}" for k in np.unique(reference) if k]
    csv_path = tmp_path_factory.mktemp("sub") / "submission.csv"
    csv_path.write_text("\n".join(lines) + "\n")
    decoders = ds.read_submission(csv_path)
    assert sorted(decoders) == sorted(test_ids)
    for image_id in test_ids:
        np.testing.assert_array_equal(decoders[image_id]((12, 10)), ds.load("test", image_id).instances)

    store = Store(tmp_path_factory.mktemp("runs"))
    stage = import_predictions(store, "k1", csv_path, ds, "instances", "rle")
    assert [e["sample_id"] for e in stage["images"]] == test_ids and store.stage("k1") is not None

    csv_path.write_text("\n".join(line for line in lines if not line.startswith(test_ids[0])) + "\n")
    with pytest.raises(SubmissionError, match=f"1 evaluation images have no rows \\({test_ids[0]}\\)"):
        import_predictions(store, "k2", csv_path, ds, "instances", "rle")
