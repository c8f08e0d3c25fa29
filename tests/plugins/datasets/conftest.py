"""Fixtures for dataset plugin tests: the shared real copies, when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def shared_datasets() -> Path:
    """``$BENCH_SHARED_DATASETS``, else ``<repo>/../shared/datasets`` (as laid out in CI)."""
    value = os.environ.get("BENCH_SHARED_DATASETS")
    return Path(value) if value else (REPO.parent / "shared" / "datasets").resolve()


@pytest.fixture(scope="session")
def glas_root() -> Path:
    root = shared_datasets() / "glas"
    if not (root / "Grade.csv").is_file():
        pytest.skip(f"real GlaS copy not found at {root} (set BENCH_SHARED_DATASETS)")
    return root


@pytest.fixture(scope="session")
def dsb_root() -> Path:
    root = shared_datasets() / "dsb2018"
    if not (root / "stage1_train").is_dir():
        pytest.skip(f"real DSB2018 copy not found at {root} (set BENCH_SHARED_DATASETS)")
    return root
