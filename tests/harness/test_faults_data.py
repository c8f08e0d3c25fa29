"""Damaged data files: the error names the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import DataError
from plugins.datasets.rle import read_rle_csv


def test_non_utf8_csv_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "stage1_train_labels.csv"
    path.write_bytes(b"ImageId,EncodedPixels\naaa,1 2\nbbb,3 \xff4\n")
    with pytest.raises(DataError, match=r"stage1_train_labels.csv line 3 is not UTF-8"):
        read_rle_csv(path)
