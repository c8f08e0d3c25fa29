"""Cost of the leaderboard bootstrap at GlaS size (pytest-benchmark; run with --benchmark-enable).

19 measured entries × 3 pooled GlaS metrics × 2 splits (testA 60 images, testB 20), B = 1000:
intervals, rank intervals, Kendall's τ and every paired test.  Statistics are synthetic but
shaped like the real ones (object counts, area-weighted sums).
"""

from __future__ import annotations

import numpy as np

from harness import uncertainty as unc
from harness.leaderboard import RankedMetric, rank
from harness.leaderboard import Row as TableRow
from plugins.metrics.glas import specs as glas_specs

SPLITS = {"testA": 60, "testB": 20}
METRICS = [RankedMetric(n, n != "object_hausdorff", tuple(SPLITS)) for n in ("object_f1", "object_dice", "object_hausdorff")]


def _glas_like(rng: np.random.Generator, skill: float) -> dict[str, dict[str, float]]:
    n_ref = float(rng.integers(1, 30))
    tp = float(rng.binomial(int(n_ref), skill))
    area_ref, area_pred = rng.uniform(2e4, 2e5, 2)
    return {
        "object_f1": {"tp": tp, "fp": float(rng.integers(0, 10)), "fn": n_ref - tp},
        "object_dice": {"ref_weighted": area_ref * skill * rng.uniform(0.7, 1.0), "ref_area": area_ref,
                        "pred_weighted": area_pred * skill * rng.uniform(0.7, 1.0), "pred_area": area_pred},
        "object_hausdorff": {"ref_weighted": area_ref * rng.uniform(20, 400) / skill, "ref_area": area_ref,
                             "pred_weighted": area_pred * rng.uniform(20, 400) / skill, "pred_area": area_pred},
    }


def test_glas_leaderboard_bootstrap(benchmark) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(2015)
    specs = {s.name: s for s in glas_specs()}
    images = {f"m{e:02d}": {0: {split: {f"{split}_{i}": _glas_like(rng, 0.2 + 0.04 * e) for i in range(n)}
                                for split, n in SPLITS.items()}} for e in range(19)}
    rows = []
    for entry, seeds in images.items():
        row = TableRow(entry=entry, source="measured")
        for m in METRICS:
            for split in m.splits:
                stats = [seeds[0][split][i][m.name] for i in sorted(seeds[0][split])]
                row.scores[f"{m.name}.{split}"] = round(specs[m.name].split_values(stats)["value"], 4)
        rows.append(row)

    def run() -> dict[str, object]:
        table = rank(rows, METRICS)
        return unc.annotate(table, images, METRICS, specs, unc.Settings(resamples=1000, seed=0))

    info = benchmark.pedantic(run, rounds=1, iterations=1)
    assert set(info["reduction"].values()) == {"sum"}  # type: ignore[union-attr]
    assert info["kendall_tau"]["overall"]["median"] > 0.5  # type: ignore[index]
