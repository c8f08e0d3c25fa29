"""The embedded real sample and the synthetic generator."""

from __future__ import annotations

import csv
import hashlib

import numpy as np
import pytest

from plugins.datasets.dsb2018_sample import DATA, DSB2018Sample
from plugins.datasets.synthetic import Synthetic
from tests.conftest import REPO

SHARED_DSB = REPO.parent / "shared" / "datasets" / "dsb2018" / "stage1_train"


def test_sample_has_20_images_in_both_splits_with_every_type() -> None:
    ds = DSB2018Sample()
    assert len(ds.sample_ids("train")) == len(ds.sample_ids("test")) == 10
    with open(DATA / "manifest.csv") as fh:
        rows = list(csv.DictReader(fh))
    types = {(r["split"], r["type"]) for r in rows}
    assert types == {(s, t) for s in ("train", "test") for t in ("fluorescence", "histology")}
    total = 0
    for row in rows:
        sample = ds.load(row["split"], row["image_id"])
        assert sample.image.shape == (int(row["height"]), int(row["width"]), 3)
        assert sample.instances.dtype == np.int32
        ids = np.unique(sample.instances)
        assert len(ids) - 1 == int(row["nuclei"])
        total += int(row["nuclei"])
    assert total == 1171  # the manifest's counts: 27+16+16+24+19+5+7+27+5+57+70+7+73+29+34+33+23+17+313+369


@pytest.mark.skipif(not SHARED_DSB.is_dir(), reason="shared DSB2018 copy not beside the repository")
def test_sample_matches_the_official_files_exactly() -> None:
    from PIL import Image

    ds = DSB2018Sample()
    image_id = ds.sample_ids("test")[0]
    folder = SHARED_DSB / image_id
    official = np.asarray(Image.open(folder / "images" / f"{image_id}.png"))
    sample = ds.load("test", image_id)
    assert np.array_equal(sample.image, official[..., :3])
    masks = sorted((folder / "masks").glob("*.png"))
    for i, mask in enumerate(masks, start=1):
        assert np.array_equal(sample.instances == i, np.asarray(Image.open(mask)) > 0)
    with open(DATA / "manifest.csv") as fh:
        digest = next(r["source_sha256"] for r in csv.DictReader(fh) if r["image_id"] == image_id)
    assert hashlib.sha256((folder / "images" / f"{image_id}.png").read_bytes()).hexdigest() == digest


def test_missing_sample_files_name_the_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from harness import DataError

    with pytest.raises(DataError, match=str(tmp_path / "manifest.csv")):
        DSB2018Sample(root=tmp_path).sample_ids("test")


def test_synthetic_is_seeded_and_labels_are_exact() -> None:
    a = Synthetic(seed=3).load("test", "test_0002")
    b = Synthetic(seed=3).load("test", "test_0002")
    c = Synthetic(seed=4).load("test", "test_0002")
    assert np.array_equal(a.image, b.image) and np.array_equal(a.instances, b.instances)
    assert not np.array_equal(a.instances, c.instances)
    # nuclei are dark on a bright background in the brightfield style
    fg = a.instances > 0
    assert a.image[fg].mean() < a.image[~fg].mean() - 60
    # every label is one ellipse: compact and connected
    from scipy import ndimage as ndi

    for obj in range(1, a.instances.max() + 1):
        assert ndi.label(a.instances == obj)[1] == 1


def test_synthetic_fluorescence_and_classes() -> None:
    s = Synthetic(style="fluorescence", n_classes=3, seed=1).load("train", "train_0000")
    fg = s.instances > 0
    assert s.image[fg].mean() > s.image[~fg].mean() + 100
    assert set(np.unique(s.classes[fg])) <= {1, 2, 3} and (s.classes[~fg] == 0).all()
    for obj in np.unique(s.instances[fg]):
        assert len(np.unique(s.classes[s.instances == obj])) == 1
