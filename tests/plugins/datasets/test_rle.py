from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from harness import DataError
from plugins.datasets.rle import decode_rows, read_rle_csv, rle_decode, rle_encode


def test_official_examples_are_column_major_and_one_based() -> None:
    # "1 3" means pixels 1, 2, 3; pixel 2 is (row 2, col 1): counting goes down first.
    mask = rle_decode("1 3", (4, 3))
    assert sorted(zip(*np.nonzero(mask))) == [(0, 0), (1, 0), (2, 0)]
    # "1 3 10 5": pixels 1-3 and 10-14 of a 4×4 image; pixel 10 = (row 2, col 3) 1-based
    mask = rle_decode("1 3 10 5", (4, 4))
    expected = {(0, 0), (1, 0), (2, 0), (1, 2), (2, 2), (3, 2), (0, 3), (1, 3)}
    assert set(zip(*np.nonzero(mask))) == expected


def test_encode_by_hand() -> None:
    mask = np.array([[1, 0, 1], [1, 0, 1]], dtype=bool)  # column-major pixels 1, 2, 5, 6
    assert rle_encode(mask) == "1 2 5 2"
    assert rle_encode(np.zeros((3, 3), bool)) == ""
    assert rle_encode(np.ones((2, 2), bool)) == "1 4"


@settings(max_examples=60, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 12))))
def test_round_trip(mask: np.ndarray) -> None:
    np.testing.assert_array_equal(rle_decode(rle_encode(mask), mask.shape), mask)


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        ("1 2 5", "odd number"),
        ("1 x", "non-integer"),
        ("0 2", "positive"),
        ("3 0", "positive"),
        ("5 2 1 2", "not sorted"),
        ("1 3 2 2", "overlap"),
        ("10 10", "beyond"),
    ],
)
def test_bad_encodings(encoded: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rle_decode(encoded, (4, 4))


def test_csv_errors_name_file_and_line(tmp_path: Path) -> None:
    empty = tmp_path / "stage1_train_labels.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=r"stage1_train_labels\.csv.*empty"):
        read_rle_csv(empty)
    bad = tmp_path / "stage1_solution.csv"
    bad.write_text(
        "ImageId,EncodedPixels,Height,Width,Usage\nabc,1 2,4,4,Public\nabc,3 20,4,4,Public\n"
    )
    rows = read_rle_csv(bad)
    assert rows["abc"][0].usage == "Public" and rows["abc"][0].height == 4
    with pytest.raises(
        DataError, match=r"stage1_solution\.csv line 3 \(abc\): bad RLE.*beyond the 4x4"
    ):
        decode_rows(rows["abc"], (4, 4), bad)
    with pytest.raises(DataError, match="Height/Width 4x4 differ"):
        decode_rows(rows["abc"][:1], (5, 4), bad)


def test_overlapping_masks_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("ImageId,EncodedPixels\nabc,1 4\nabc,3 2\n")
    with pytest.raises(DataError, match="line 3: mask overlaps"):
        decode_rows(read_rle_csv(path)["abc"], (4, 4), path)
