"""Speed and memory of the metric catalogue (pytest-benchmark; run with --benchmark-enable).

* instance suite (dsb_map, aji, aji_plus, pq, f1_at_iou, hd95, count) on 512×512 label images
  with ~100 nuclei-like objects, seconds per image, and the same for stardist.matching and
  MONAI's hd95 where installed;
* GlaS trio (object_f1, object_dice, object_hausdorff) over the real GlaS testA split (60
  images; shared/datasets/glas), reference maps against perturbed copies of themselves; no
  package implements the trio, so the comparison is the textbook object Hausdorff built on
  scikit-image's ``hausdorff_distance`` (one call per object pair) on the first images,
  which must also give our values.

Peak traced memory (tracemalloc) of one image's suite is recorded in ``extra_info``.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from harness import ImagePair, Prediction, Sample
from harness.plugins import build_registry
from plugins.datasets.synthetic import render
from plugins.metrics.boundary import hd95
from plugins.metrics.instance import DSB_PERCENTS, dsb_map
from tests.plugins.metrics._helpers import perturb

REPO = Path(__file__).resolve().parents[2]
SUITE = ("dsb_map", "aji", "aji_plus", "pq", "f1_at_iou", "hd95", "count_rmse")
GLAS = ("object_f1", "object_dice", "object_hausdorff")


@pytest.fixture(scope="module")
def nuclei() -> list[tuple[np.ndarray, np.ndarray]]:
    """One 512×512 reference with 100 nuclei-like objects and its perturbed prediction."""
    rng = np.random.default_rng(2018)
    _, ref, _ = render(rng, 512, 512, 100, (7.0, 14.0), "fluorescence")
    return [(perturb(ref, rng), ref)]


def _glas_root() -> Path | None:
    for base in (REPO / "shared", REPO.parent / "shared", Path("/work/shared")):
        if sorted((base / "datasets" / "glas").glob("testA_*_anno.png")):
            return base / "datasets" / "glas"
    return None


@pytest.fixture(scope="module")
def glas_test_a() -> list[tuple[np.ndarray, np.ndarray]]:
    from PIL import Image

    root = _glas_root()
    if root is None:
        pytest.skip("GlaS testA not found (shared/datasets/glas/testA_*_anno.png)")
    rng = np.random.default_rng(2015)
    pairs = []
    for path in sorted(root.glob("testA_*_anno.png")):
        ref = np.asarray(Image.open(path)).astype(np.int32)
        pairs.append((perturb(ref, rng), ref))
    assert len(pairs) == 60
    return pairs


def _runner(names: Sequence[str]) -> Callable[[Sequence[tuple[np.ndarray, np.ndarray]]], dict]:
    registry = build_registry(env={})
    specs = [registry.metric(name) for name in names]

    def run(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict:
        stats: dict[str, list] = {s.name: [] for s in specs}
        for pred, ref in pairs:
            sample = Sample(id="b", image=np.zeros((1, 1, 3), np.uint8), instances=ref)
            pair = ImagePair(Prediction(instances=pred), sample)
            for spec in specs:
                stats[spec.name].append(spec.statistics(pair))
        return {s.name: s.split_values(stats[s.name])["value"] for s in specs}

    return run


def _peak_ratio(fn: Callable[[], object], pair: tuple[np.ndarray, np.ndarray]) -> float:
    """Peak traced allocation of ``fn`` over the byte size of the two input images."""
    tracemalloc.start()
    try:
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak / (pair[0].nbytes + pair[1].nbytes)


def test_instance_suite_per_image(benchmark, nuclei) -> None:  # type: ignore[no-untyped-def]
    run = _runner(SUITE)
    peak = _peak_ratio(lambda: run(nuclei), nuclei[0])
    benchmark.extra_info["peak_memory_over_input"] = peak
    assert peak < 4.0  # a few times the two input images, never more
    values = benchmark(run, nuclei)
    assert 0.0 < values["dsb_map"] < 1.0 and values["hd95"] > 0.0


def test_stardist_dsb_per_image(benchmark, nuclei) -> None:  # type: ignore[no-untyped-def]
    matching = pytest.importorskip("stardist.matching")
    pred, ref = nuclei[0]
    thresholds = [k / 100 for k in DSB_PERCENTS]
    result = benchmark(matching.matching, ref, pred, thresh=thresholds)
    assert len(result) == len(thresholds)


def test_our_dsb_map_per_image(benchmark, nuclei) -> None:  # type: ignore[no-untyped-def]
    pred, ref = nuclei[0]
    assert 0.0 < benchmark(dsb_map, prediction=pred, reference=ref) < 1.0


def test_monai_hd95_per_image(benchmark, nuclei) -> None:  # type: ignore[no-untyped-def]
    metrics = pytest.importorskip("monai.metrics")
    torch = pytest.importorskip("torch")
    pred, ref = nuclei[0]

    def one_hot(mask: np.ndarray):  # type: ignore[no-untyped-def]
        m = torch.as_tensor(mask > 0)
        return torch.stack([~m, m])[None].float()

    p, r = one_hot(pred), one_hot(ref)
    value = benchmark(metrics.compute_hausdorff_distance, p, r, percentile=95)
    assert float(value) == pytest.approx(hd95(prediction=pred, reference=ref))


def test_our_hd95_per_image(benchmark, nuclei) -> None:  # type: ignore[no-untyped-def]
    pred, ref = nuclei[0]
    assert benchmark(hd95, prediction=pred, reference=ref) > 0.0


def test_glas_trio_over_test_a(benchmark, glas_test_a) -> None:  # type: ignore[no-untyped-def]
    run = _runner(GLAS)
    peak = max(_peak_ratio(lambda p=pair: run([p]), pair) for pair in glas_test_a[:10])
    benchmark.extra_info["peak_memory_over_input"] = peak
    assert peak < 4.0
    values = benchmark(run, glas_test_a)
    assert 0.0 < values["object_f1"] < 1.0 and values["object_hausdorff"] > 0.0


def textbook_object_hausdorff(pred: np.ndarray, ref: np.ndarray) -> float:
    """GlaS object Hausdorff the direct way: object masks, partners by pixel counts and
    scikit-image's Hausdorff distance for every pair needed (all pairs for an object
    without partner)."""
    from skimage.metrics import hausdorff_distance

    terms = []
    for own, other in ((ref, pred), (pred, ref)):
        ids = [int(k) for k in np.unique(own) if k]
        others = [int(k) for k in np.unique(other) if k]
        weighted, total = 0.0, 0
        for k in ids:
            mask = own == k
            counts = np.bincount(other[mask], minlength=1)
            counts[0] = 0
            if counts.any():
                d = hausdorff_distance(mask, other == int(np.argmax(counts)))
            else:
                d = min(hausdorff_distance(mask, other == o) for o in others)
            weighted += int(mask.sum()) * d
            total += int(mask.sum())
        terms.append(weighted / total)
    return float(np.mean(terms))


def test_textbook_glas_hausdorff_on_six_images(benchmark, glas_test_a) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("skimage")
    from plugins.metrics.glas import object_hausdorff

    six = glas_test_a[:6]
    values = benchmark.pedantic(lambda: [textbook_object_hausdorff(p, r) for p, r in six], rounds=1)
    ours = [object_hausdorff(prediction=p, reference=r) for p, r in six]
    assert ours == pytest.approx(values, rel=1e-12)
