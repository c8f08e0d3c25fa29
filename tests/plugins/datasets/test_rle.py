from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from harness import DataError
from plugins.datasets.rle import RleRow, _decode_rows_together, decode_rows, read_rle_csv, rle_decode, rle_encode


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


# ---- decode_rows: every row of an image at once -----------------------------------------


def kaggle_by_hand(encodings: list[str], shape: tuple[int, int]) -> np.ndarray:
    """Independent reference: walk each run pixel by pixel, numbering pixels from 1 down each
    column, then across (pixel p is row (p-1) % H, column (p-1) // H); a row with no runs takes
    no id."""
    height, _ = shape
    out = np.zeros(shape, dtype=np.int32)
    index = 0
    for encoded in encodings:
        numbers = [int(t) for t in encoded.split()]
        if not numbers:
            continue
        index += 1
        for start, length in zip(numbers[0::2], numbers[1::2]):
            for pixel in range(start, start + length):
                out[(pixel - 1) % height, (pixel - 1) // height] = index
    return out


def rows_of(encodings: list[str], height: int | None = None, width: int | None = None) -> list[RleRow]:
    return [RleRow("img", e, line, height, width) for line, e in enumerate(encodings, start=2)]


def test_decode_rows_by_hand() -> None:
    # 3×4 image, column-major: pixel 4 is (0, 1), pixels 11-12 are rows 1-2 of column 3.
    rows = rows_of(["1 2", "", "4 1 11 2"], 3, 4)
    expected = np.array([[1, 2, 0, 0], [1, 0, 0, 2], [0, 0, 0, 2]], dtype=np.int32)
    out = decode_rows(rows, (3, 4), Path("x.csv"))
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.int32 and out.flags.c_contiguous
    assert not decode_rows(rows_of(["", ""]), (3, 4), Path("x.csv")).any()


@settings(max_examples=80, deadline=None)
@given(
    arrays(np.int8, st.tuples(st.integers(1, 9), st.integers(1, 9)), elements=st.integers(0, 4)),
    st.lists(st.integers(0, 6), max_size=2),
)
def test_decode_rows_matches_the_hand_decode(labels: np.ndarray, empty_at: list[int]) -> None:
    """Random non-overlapping objects (ids in any order, some absent, empty rows mixed in)."""
    encodings = [rle_encode(labels == k) for k in (3, 1, 4, 2) if (labels == k).any()]
    for position in empty_at:
        encodings.insert(min(position, len(encodings)), "")
    together = _decode_rows_together(rows_of(encodings), labels.shape)  # the path valid rows take
    assert together is not None
    np.testing.assert_array_equal(together, kaggle_by_hand(encodings, labels.shape))
    np.testing.assert_array_equal(decode_rows(rows_of(encodings), labels.shape, Path("x.csv")), together)


@pytest.mark.parametrize(
    ("encodings", "message"),
    [
        (["1 2", "4 1 3"], r"line 3 \(img\): bad RLE: odd number"),
        (["1 2", "4 x"], r"line 3 \(img\): bad RLE: non-integer"),
        (["1 2", "0 1"], r"line 3 \(img\): bad RLE: .*positive"),
        (["1 2", "6 2 3 1"], r"line 3 \(img\): bad RLE: runs are not sorted"),
        (["1 2", "12 2"], r"line 3 \(img\): bad RLE: a run ends at pixel 13, beyond the 3x4"),
        (["1 2", "9223372036854775807 9223372036854775807"], r"line 3 \(img\): bad RLE: a run ends at pixel 18446744073709551613"),
        (["1 2", "99999999999999999999 1"], r"line 3 \(img\): bad RLE: a value is beyond"),
        (["1 2", "5 1", "2 2"], "line 4: mask overlaps an earlier mask of img"),
    ],
)
def test_decode_rows_names_the_first_bad_line(encodings: list[str], message: str) -> None:
    assert _decode_rows_together(rows_of(encodings), (3, 4)) is None
    with pytest.raises(DataError, match=message):
        decode_rows(rows_of(encodings), (3, 4), Path("x.csv"))
