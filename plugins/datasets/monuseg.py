"""MoNuSeg 2018: H&E nuclei, 1000×1000 ``.tif`` tiles with Aperio ImageScope XML polygons.

Layouts as unzipped: ``MoNuSeg 2018 Training Data/{Tissue Images/*.tif, Annotations/*.xml}``
(possibly nested twice, with a ``__MACOSX`` junk folder) and ``MoNuSegTestData/`` (tif and xml
side by side).  Every ``.tif`` below the dataset folder is paired with the ``.xml`` of the same
stem beside it or in the sibling ``Annotations`` folder.  The split is the official one: the 14
test slides listed below form ``test``, every other slide ``train`` (37 in the release).

Rasterisation: regions in document order get ids 1..N; each polygon is filled with
``skimage.draw.polygon`` (rows = Y, cols = X, sub-pixel coordinates as given) and a later region
overwrites an earlier one where they overlap.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import cached_property
from pathlib import Path

import numpy as np
import tifffile
from skimage.draw import polygon

from harness import DataError, Sample, hookimpl
from harness.data import FileDataset

TEST_IDS = frozenset(
    f"TCGA-{s}"
    for s in (
        "2Z-A9J9-01A-01-TS1",
        "44-2665-01B-06-BS6",
        "69-7764-01A-01-TS1",
        "A6-6782-01A-01-BS1",
        "AC-A2FO-01A-01-TS1",
        "AO-A0J2-01A-01-BSA",
        "CU-A0YN-01A-02-BSB",
        "EJ-A46H-01A-03-TSC",
        "FG-A4MU-01B-01-TS1",
        "GL-6846-01A-01-BS1",
        "HC-7209-01A-01-TS1",
        "HT-8564-01Z-00-DX1",
        "IZ-8196-01A-01-BS1",
        "ZF-A9R5-01A-01-TS1",
    )
)
RELEASE = {"train": 37, "test": 14}


def patient_of(slide: str) -> str:
    """The TCGA patient barcode (``TCGA-TSS-PPPP``) of a slide id."""
    return "-".join(slide.split("-")[:3])


def read_regions(path: Path, dataset: str = "monuseg") -> tuple[list[np.ndarray], float | None]:
    """Polygons (each N×2 float, columns X then Y) of an Aperio XML file, and MicronsPerPixel."""
    if not path.is_file():
        raise DataError(f"{dataset}: missing annotation {path} (Aperio XML with the image's stem)")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise DataError(f"{dataset}: {path} is not well-formed XML: {exc}") from exc
    regions = root.findall(".//Region")
    if not regions:
        raise DataError(f"{dataset}: {path} has no <Region> elements; expected one per nucleus")
    polygons = []
    for number, region in enumerate(regions, start=1):
        vertices = region.findall(".//Vertex")
        if not vertices:
            raise DataError(
                f"{dataset}: {path}: Region {region.get('Id', number)} has no <Vertex> elements; "
                "expected its polygon as <Vertices><Vertex X=.. Y=../>…"
            )
        try:
            polygons.append(
                np.array([[float(v.get("X", "")), float(v.get("Y", ""))] for v in vertices])
            )
        except ValueError as exc:
            raise DataError(
                f"{dataset}: {path}: Region {region.get('Id', number)}: bad vertex ({exc})"
            ) from exc
    mpp = root.get("MicronsPerPixel")
    try:
        microns = float(mpp) if mpp else None
    except ValueError:
        microns = None
    return polygons, microns


def rasterise(polygons: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Instance map of ``polygons`` (ids 1..N in order; later ones overwrite earlier ones)."""
    instances = np.zeros(shape, dtype=np.int32)
    for index, vertices in enumerate(polygons, start=1):
        rr, cc = polygon(vertices[:, 1], vertices[:, 0], shape=shape)
        instances[rr, cc] = index
    return instances


def read_tiff_rgb(path: Path, dataset: str, fix: str) -> np.ndarray:
    """Decode the first page of a TIFF as H×W×3 uint8 RGB (grey expanded, alpha dropped).

    Uncompressed, PackBits and deflate pages decode with tifffile alone; LZW (the MoNuSeg
    training images) and JPEG need the ``imagecodecs`` package, a core dependency.  A page whose
    codec is not installed gets an error naming the codec and the package to install.
    """
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            compression = tifffile.COMPRESSION(page.compression)
            if compression not in tifffile.TIFF.DECOMPRESSORS:
                raise DataError(
                    f"{dataset}: cannot decode {path}: it is {compression.name}-compressed and no "
                    "decoder for that is installed; install imagecodecs "
                    "(python -m pip install imagecodecs), which tifffile uses for LZW and JPEG"
                )
            array = page.asarray()
    except DataError:
        raise
    except Exception as exc:
        raise DataError(
            f"{dataset}: cannot decode {path} ({type(exc).__name__}: {exc}); expected an RGB .tif. {fix}"
        ) from exc
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or array.dtype != np.uint8:
        raise DataError(f"{dataset}: {path} is {array.shape} {array.dtype}; expected H×W×3 uint8 RGB")
    return np.ascontiguousarray(array[..., :3])


class MoNuSeg(FileDataset):
    """MoNuSeg 2018 multi-organ nuclei (TCGA), official 37 training / 14 test images."""

    name = "monuseg"
    version = "1"
    description = "MoNuSeg 2018 multi-organ H&E nuclei, 1000x1000 at 40x, Aperio XML polygons"
    provides = frozenset({"foreground", "instances"})
    splits = ("train", "test")
    train_split = "train"
    eval_splits = ("test",)
    class_names = ("background", "nucleus")
    license = "CC BY-NC-SA 4.0 (MoNuSeg challenge data)"
    citation = (
        "N. Kumar et al., A dataset and a technique for generalized nuclear segmentation for "
        "computational pathology. IEEE TMI 36(7):1550-1560, 2017. N. Kumar et al., A multi-organ "
        "nucleus segmentation challenge. IEEE TMI 39(5):1380-1391, 2020."
    )
    primary_metrics = ("aji", "pq", "dice")
    homepage = "https://monuseg.grand-challenge.org/Data/"
    download_help = (
        "Download 'MoNuSeg 2018 Training Data' and 'MoNuSegTestData' from "
        "https://monuseg.grand-challenge.org/Data/ and unzip both into this folder."
    )

    def __init__(self, root: Path | None = None) -> None:
        self.root = root

    @cached_property
    def _pairs(self) -> dict[str, tuple[Path, Path]]:
        """slide id -> (tif, xml) for every tif below the dataset folder."""
        if not self.directory.is_dir():
            raise self.missing("the MoNuSeg folder", self.directory)
        pairs = {}
        for tif in sorted(self.directory.rglob("*.tif")):
            if "__MACOSX" in tif.parts or tif.name.startswith("._"):
                continue
            beside = tif.with_suffix(".xml")
            annotations = tif.parent.parent / "Annotations" / f"{tif.stem}.xml"
            pairs[tif.stem] = (
                tif,
                annotations if not beside.exists() and annotations.exists() else beside,
            )
        if not pairs:
            raise self.missing("MoNuSeg .tif images", self.directory)
        return pairs

    def sample_ids(self, split: str) -> list[str]:
        self._check_split(split)
        return [s for s in sorted(self._pairs) if (s in TEST_IDS) == (split == "test")]

    def load(self, split: str, sample_id: str) -> Sample:
        if sample_id not in self.sample_ids(split):
            raise DataError(
                f"{self.name}: no slide {sample_id!r} in split {split!r} under {self.directory}"
            )
        tif, xml = self._pairs[sample_id]
        image = self._read_image(tif)
        polygons, microns = read_regions(xml, self.name)
        instances = rasterise(polygons, image.shape[:2])
        meta = {
            "split": split,
            "patient": patient_of(sample_id),
            "source": str(tif.relative_to(self.directory)),
            "spacing": (1.0, 1.0),
            "microns_per_pixel": microns if microns is not None else 0.25,
            "regions": len(polygons),
        }
        return Sample(id=sample_id, image=image, instances=instances, meta=meta)

    def _read_image(self, path: Path) -> np.ndarray:
        return read_tiff_rgb(path, self.name, self.fix())

    def check_layout(self) -> list[str]:
        problems = [
            f"missing annotation {xml} for {tif}"
            for tif, xml in self._pairs.values()
            if not xml.is_file()
        ]
        for split, expected in RELEASE.items():
            if len(self.sample_ids(split)) != expected:
                problems.append(
                    f"{len(self.sample_ids(split))} {split} images; the release has {expected}"
                )
        shared = {patient_of(s) for s in self.sample_ids("train")} & {
            patient_of(s) for s in self.sample_ids("test")
        }
        if shared:
            problems.append(f"patients in both train and test: {', '.join(sorted(shared))}")
        return problems


@hookimpl
def bench_register_datasets(register):  # type: ignore[no-untyped-def]
    register(MoNuSeg)
