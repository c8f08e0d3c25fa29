"""Throughput of the real-data loaders.

Run with ``pytest tests/benchmarks/test_dataset_loading.py --benchmark-enable
--benchmark-group-by=group``.  Besides a full pass over each dataset, the DSB2018 loader is
compared with a bare loop doing the same work on the same images (same label maps, asserted
before timing), one group per comparison:

- ``dsb2018 stage1_test``: ``DSB2018.load`` of the 65 stage-1 test images against a PIL decode
  plus a plain RLE decode of the same ``stage1_solution.csv`` rows (parsed beforehand by both);
- ``dsb2018 stage1_train``: ``DSB2018.load`` of every 10th training folder against a PIL loop
  over the same folders (the image and each nucleus PNG decoded to an array);
- ``dsb2018 construct``: a new dataset object up to its three splits' ids (the type table).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from harness import Dataset
from plugins.datasets.dsb2018 import DSB2018
from plugins.datasets.glas import GlaS

SHARED = Path(
    os.environ.get(
        "BENCH_SHARED_DATASETS", Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
    )
)
DSB = SHARED / "dsb2018"


def iterate_all(dataset: Dataset) -> int:
    pixels = 0
    for split in dataset.splits:
        for sample in dataset.samples(split):
            pixels += sample.image.shape[0] * sample.image.shape[1]
    return pixels


@pytest.mark.parametrize(
    ("name", "make", "marker"),
    [
        ("glas", lambda root: GlaS(root=root), "Grade.csv"),
        ("dsb2018", lambda root: DSB2018(root=root), "stage1_train"),
    ],
)
def test_iterate_every_sample(benchmark, name, make, marker) -> None:  # type: ignore[no-untyped-def]
    if benchmark.disabled:  # a full pass over the real data takes tens of seconds
        pytest.skip("dataset loading benchmarks run only with --benchmark-enable")
    root = SHARED / name
    if not (root / marker).exists():
        pytest.skip(f"no real {name} copy at {root}")
    n_samples = sum(len(make(root).sample_ids(s)) for s in make(root).splits)
    pixels = benchmark.pedantic(
        lambda: iterate_all(make(root)), rounds=3, iterations=1, warmup_rounds=0
    )
    benchmark.extra_info.update({"samples": n_samples, "megapixels": round(pixels / 1e6, 2)})
    assert pixels > 0


# ---- DSB2018: the loader against a bare loop ------------------------------------------


def solution_rows(root: Path) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    with open(root / "stage1_solution.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            rows.setdefault(row["ImageId"], []).append(row["EncodedPixels"])
    return rows


def bare_test_image(root: Path, image_id: str, rows: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """PIL decode, then each run written into a column-major label array (Kaggle's 1-based
    starts, pixels numbered down each column), objects numbered in file order."""
    with Image.open(root / "stage1_test" / image_id / "images" / f"{image_id}.png") as im:
        image = np.asarray(im.convert("RGB"))
    height, width = image.shape[:2]
    flat = np.zeros(height * width, dtype=np.int32)
    index = 0
    for encoded in rows:
        numbers = [int(t) for t in encoded.split()]
        if numbers:
            index += 1
        for start, length in zip(numbers[0::2], numbers[1::2]):
            flat[start - 1 : start - 1 + length] = index
    return image, flat.reshape((height, width), order="F")


def bare_train_folder(root: Path, image_id: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """PIL decode of the image and of each nucleus PNG (sorted by MaskId)."""
    folder = root / "stage1_train" / image_id
    with Image.open(folder / "images" / f"{image_id}.png") as im:
        image = np.asarray(im.convert("RGB"))
    masks = []
    for path in sorted((folder / "masks").glob("*.png")):
        with Image.open(path) as im:
            masks.append(np.asarray(im))
    return image, masks


def painted(masks: list[np.ndarray]) -> np.ndarray:
    out = np.zeros(masks[0].shape, dtype=np.int32)
    for index, mask in enumerate(masks, start=1):
        out[(mask > 0) & (out == 0)] = index
    return out


def dsb_workloads(train_step: int = 10) -> dict[str, tuple[Callable[[], Any], Callable[[], Any], int]]:
    """group -> (loader pass, bare pass, images): both passes over the same images, from a
    dataset object and parsed CSV made beforehand."""
    ds = DSB2018(root=DSB, protocol="stage1")
    test_ids = ds.sample_ids("test")
    train_ids = ds.sample_ids("train")[::train_step]
    rows = solution_rows(DSB)
    ds.load("test", test_ids[0])  # parses stage1_solution.csv once, as a run does

    def check() -> None:
        for image_id in test_ids:
            sample, (image, labels) = ds.load("test", image_id), bare_test_image(DSB, image_id, rows[image_id])
            np.testing.assert_array_equal(sample.image, image)
            np.testing.assert_array_equal(sample.instances, labels)
        for image_id in train_ids[::4]:
            sample, (image, masks) = ds.load("train", image_id), bare_train_folder(DSB, image_id)
            np.testing.assert_array_equal(sample.image, image)
            np.testing.assert_array_equal(sample.instances, painted(masks))

    check()
    return {
        "dsb2018 stage1_test": (
            lambda: [ds.load("test", i) for i in test_ids],
            lambda: [bare_test_image(DSB, i, rows[i]) for i in test_ids],
            len(test_ids),
        ),
        "dsb2018 stage1_train": (
            lambda: [ds.load("train", i) for i in train_ids],
            lambda: [bare_train_folder(DSB, i) for i in train_ids],
            len(train_ids),
        ),
    }


@pytest.fixture(scope="module")
def workloads() -> dict[str, tuple[Callable[[], Any], Callable[[], Any], int]]:
    if not (DSB / "stage1_solution.csv").is_file():
        pytest.skip(f"no real DSB2018 stage 1 (with stage1_solution.csv) at {DSB}")
    return dsb_workloads()


@pytest.mark.parametrize("group", ["dsb2018 stage1_test", "dsb2018 stage1_train"])
@pytest.mark.parametrize("how", ["loader", "bare"])
def test_dsb2018_loader_against_a_bare_loop(benchmark, workloads, group: str, how: str) -> None:  # type: ignore[no-untyped-def]
    if benchmark.disabled:
        pytest.skip("dataset loading benchmarks run only with --benchmark-enable")
    loader, bare, images = workloads[group]
    benchmark.group = group
    benchmark.extra_info["images"] = images
    benchmark.pedantic(loader if how == "loader" else bare, rounds=5, iterations=1, warmup_rounds=1)


def test_dsb2018_construct(benchmark) -> None:  # type: ignore[no-untyped-def]
    if benchmark.disabled:
        pytest.skip("dataset loading benchmarks run only with --benchmark-enable")
    if not (DSB / "stage1_train").is_dir():
        pytest.skip(f"no real DSB2018 copy at {DSB}")
    benchmark.group = "dsb2018 construct"

    def construct() -> int:
        ds = DSB2018(root=DSB)
        return sum(len(ds.sample_ids(split)) for split in ds.splits)

    assert benchmark.pedantic(construct, rounds=10, iterations=1, warmup_rounds=1) == 735
