from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from harness import DataError
from plugins.datasets.monuseg import MoNuSeg, read_regions

TRAIN = ["TCGA-18-5592-01Z-00-DX1", "TCGA-DK-A2I6-01A-01-TS1"]
TEST = "TCGA-2Z-A9J9-01A-01-TS1"


def aperio_xml(polygons: list[list[tuple[float, float]]], mpp: str = "0.252") -> str:
    """An ImageScope annotation: RegionAttributeHeaders first, then one Region per polygon."""
    regions = "".join(
        f'<Region Id="{i}" Type="0" Zoom="1" Selected="0" ImageLocation="" NegativeROA="0" DisplayId="{i}">'
        "<Attributes/><Vertices>"
        + "".join(f'<Vertex X="{x}" Y="{y}" Z="0"/>' for x, y in poly)
        + "</Vertices></Region>"
        for i, poly in enumerate(polygons, start=1)
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Annotations MicronsPerPixel="{mpp}">'
        '<Annotation Id="1" Name="" ReadOnly="0" LineColor="65280" Visible="1">'
        '<Attributes><Attribute Name="Description" Id="0" Value=""/></Attributes><Regions>'
        '<RegionAttributeHeaders><AttributeHeader Id="9999" Name="Region" ColumnWidth="-1"/>'
        f"</RegionAttributeHeaders>{regions}</Regions><Plots/></Annotation></Annotations>"
    )


# rectangle with sub-pixel corners: centres of rows 3-5 and columns 2-4 lie inside
FIRST = [(1.5, 2.5), (4.5, 2.5), (4.5, 5.5), (1.5, 5.5)]
SECOND = [(3.5, 4.5), (7.5, 4.5), (7.5, 6.5), (3.5, 6.5)]  # rows 5-6, columns 4-7


@pytest.fixture
def monuseg(tmp_path: Path) -> Path:
    train = tmp_path / "MoNuSeg 2018 Training Data" / "MoNuSeg 2018 Training Data"
    (train / "Tissue Images").mkdir(parents=True)
    (train / "Annotations").mkdir()
    (tmp_path / "__MACOSX" / "Tissue Images").mkdir(parents=True)
    (tmp_path / "__MACOSX" / "Tissue Images" / f"._{TRAIN[0]}.tif").write_bytes(b"\0junk")
    test = tmp_path / "MoNuSegTestData"
    test.mkdir()
    rng = np.random.default_rng(0)
    for folder, xml_folder, stem in [
        (train / "Tissue Images", train / "Annotations", s) for s in TRAIN
    ] + [(test, test, TEST)]:
        tifffile.imwrite(
            folder / f"{stem}.tif",
            rng.integers(0, 256, (10, 12, 3), dtype=np.uint8),
            photometric="rgb",
        )
        (xml_folder / f"{stem}.xml").write_text(aperio_xml([FIRST, SECOND]))
    return tmp_path


def test_round_trip_and_official_split(monuseg: Path) -> None:
    ds = MoNuSeg(root=monuseg)
    assert ds.sample_ids("train") == TRAIN and ds.sample_ids("test") == [TEST]
    sample = ds.load("test", TEST)
    assert sample.image.shape == (10, 12, 3) and sample.image.dtype == np.uint8
    expected = np.zeros((10, 12), np.int32)
    expected[3:6, 2:5] = 1
    expected[5:7, 4:8] = 2  # the later region overwrites the overlap
    np.testing.assert_array_equal(sample.instances, expected)
    assert sample.meta["patient"] == "TCGA-2Z-A9J9" and sample.meta["microns_per_pixel"] == 0.252
    assert sample.meta["regions"] == 2
    problems = ds.verify()
    assert (
        "2 train images; the release has 37" in problems
        and "1 test images; the release has 14" in problems
    )


def test_patient_in_both_splits_is_reported(monuseg: Path) -> None:
    folder = monuseg / "MoNuSeg 2018 Training Data" / "MoNuSeg 2018 Training Data"
    tifffile.imwrite(
        folder / "Tissue Images" / "TCGA-2Z-A9J9-01A-01-TS2.tif", np.zeros((4, 4, 3), np.uint8)
    )
    (folder / "Annotations" / "TCGA-2Z-A9J9-01A-01-TS2.xml").write_text(aperio_xml([FIRST]))
    assert "patients in both train and test: TCGA-2Z-A9J9" in MoNuSeg(root=monuseg).verify()


def test_xml_without_vertices_regions_or_structure(tmp_path: Path) -> None:
    path = tmp_path / "a.xml"
    path.write_text(aperio_xml([FIRST, []]))
    with pytest.raises(DataError, match=r"a\.xml: Region 2 has no <Vertex>"):
        read_regions(path)
    path.write_text(aperio_xml([]))
    with pytest.raises(DataError, match=r"a\.xml has no <Region>"):
        read_regions(path)
    path.write_text("<Annotations><Annotation>")
    with pytest.raises(DataError, match=r"a\.xml is not well-formed"):
        read_regions(path)
    path.write_text(aperio_xml([[(1.0, "x"), (2.0, 3.0), (3.0, 1.0)]]))  # type: ignore[list-item]
    with pytest.raises(DataError, match="bad vertex"):
        read_regions(path)


def test_truncated_image_and_missing_annotation(monuseg: Path) -> None:
    tif = monuseg / "MoNuSegTestData" / f"{TEST}.tif"
    tif.write_bytes(tif.read_bytes()[:50])
    with pytest.raises(DataError, match=f"{TEST}.tif"):
        MoNuSeg(root=monuseg).load("test", TEST)
    xml = (
        monuseg
        / "MoNuSeg 2018 Training Data"
        / "MoNuSeg 2018 Training Data"
        / "Annotations"
        / f"{TRAIN[0]}.xml"
    )
    xml.unlink()
    with pytest.raises(DataError, match=f"missing annotation .*{TRAIN[0]}.xml"):
        MoNuSeg(root=monuseg).load("train", TRAIN[0])
    with pytest.raises(DataError, match="bench data fetch monuseg"):
        MoNuSeg(root=monuseg / "nothing").sample_ids("train")


def smooth_rgb(height: int, width: int) -> np.ndarray:
    """Colour ramps: smooth enough that JPEG at tifffile's default quality stays within a few levels."""
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([yy * 4, xx * 3, 255 - (yy + xx) * 2], axis=-1).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("compression", "predictor"), [("lzw", False), ("lzw", True), ("zlib", False), ("zlib", True), ("jpeg", False)]
)
def test_compressed_tiffs_decode_through_the_loader(
    monuseg: Path, compression: str, predictor: bool
) -> None:
    """MoNuSeg training images are LZW TIFFs; deflate and JPEG occur in other releases."""
    pytest.importorskip("imagecodecs")
    from PIL import Image

    tif = monuseg / "MoNuSegTestData" / f"{TEST}.tif"
    written = smooth_rgb(10, 12) if compression == "jpeg" else np.random.default_rng(1).integers(
        0, 256, (10, 12, 3), dtype=np.uint8
    )
    tifffile.imwrite(tif, written, photometric="rgb", compression=compression, predictor=predictor)
    with tifffile.TiffFile(tif) as stored:  # the fixture really is compressed as asked
        assert stored.pages.first.compression.name == {"lzw": "LZW", "zlib": "ADOBE_DEFLATE", "jpeg": "JPEG"}[compression]
    image = MoNuSeg(root=monuseg).load("test", TEST).image
    assert image.shape == (10, 12, 3) and image.dtype == np.uint8
    if compression == "jpeg":  # lossy: agree with Pillow's libtiff/libjpeg decoder, stay near the input
        with Image.open(tif) as im:
            independent = np.asarray(im.convert("RGB")).astype(int)
        assert np.abs(image.astype(int) - independent).max() <= 2
        assert np.abs(image.astype(int) - written.astype(int)).mean() < 3
    else:
        np.testing.assert_array_equal(image, written)


MISSING_CODEC = """
import sys
sys.modules["imagecodecs"] = None  # as if the package were not installed
from pathlib import Path
from harness import DataError
from plugins.datasets.monuseg import read_tiff_rgb
for name in sys.argv[1:]:
    try:
        print(read_tiff_rgb(Path(name), "monuseg", "FIX").shape)
    except DataError as exc:
        print(exc)
"""


def test_missing_codec_names_the_file_and_the_package(tmp_path: Path) -> None:
    """Without imagecodecs, LZW and JPEG pages say what to install; deflate still decodes."""
    import subprocess
    import sys

    names = []
    for compression in ("lzw", "jpeg", "zlib"):
        names.append(str(tmp_path / f"{compression}.tif"))
        tifffile.imwrite(names[-1], smooth_rgb(6, 5), photometric="rgb", compression=compression)
    result = subprocess.run(
        [sys.executable, "-c", MISSING_CODEC, *names],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    lzw, jpeg, deflate = result.stdout.splitlines()
    assert f"{names[0]}: it is LZW-compressed" in lzw and "install imagecodecs" in lzw
    assert f"{names[1]}: it is JPEG-compressed" in jpeg and "install imagecodecs" in jpeg
    assert deflate == "(6, 5, 3)"
