"""Bootstrap intervals, seeds, rank stability and paired tests of leaderboards."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from harness import uncertainty as unc
from harness.bench import build_leaderboard, run_benchmark
from harness.leaderboard import RankedMetric, write_version
from harness.store import Store
from harness.types import MetricSpec, mean_of_values
from plugins.metrics.glas import specs as glas_specs

GLAS = {s.name: s for s in glas_specs()}
DICE = MetricSpec(name="dice", higher_is_better=True, statistics=lambda pair: {"value": 0.0}, reduce=mean_of_values)


def _median_reduce(stats):  # type: ignore[no-untyped-def]
    return {"value": float(np.median([s["value"] for s in stats]))}


MEDIAN = MetricSpec(name="median", higher_is_better=True, statistics=lambda pair: {"value": 0.0}, reduce=_median_reduce)


def test_percentile_interval_of_a_mean_agrees_with_scipy_bootstrap() -> None:
    x = np.random.default_rng(7).uniform(0.4, 0.9, size=80)
    weights = unc.resample_weights(np.random.default_rng(1), 80, 20000)
    values, how = unc.reduce_resamples(DICE, [{"value": v} for v in x], weights)
    assert how == "mean"
    lo, hi = unc.percentile_interval(values, 0.95)
    ref = sps.bootstrap((x,), np.mean, n_resamples=20000, method="percentile", confidence_level=0.95,
                        rng=np.random.default_rng(2)).confidence_interval
    se = x.std(ddof=1) / np.sqrt(len(x))  # both intervals are about mean ± 1.96 se
    assert abs(lo - ref.low) < 0.1 * se and abs(hi - ref.high) < 0.1 * se
    assert abs((hi - lo) - 2 * 1.96 * se) < 0.15 * se


def test_pooled_metrics_are_reduced_again_per_resample() -> None:
    rng = np.random.default_rng(3)
    f1_stats = [{"tp": float(t), "fp": float(f), "fn": float(n)} for t, f, n in rng.integers(0, 9, size=(30, 3))]
    weights = unc.resample_weights(np.random.default_rng(4), 30, 40)
    values, how = unc.reduce_resamples(GLAS["object_f1"], f1_stats, weights)
    assert how == "sum"
    for b in (0, 17, 39):  # F1 from the counts pooled over the resampled images, by hand
        counts = weights[b]
        tp, fp, fn = (float(sum(c * s[k] for c, s in zip(counts, f1_stats, strict=True))) for k in ("tp", "fp", "fn"))
        precision, recall = tp / (tp + fp), tp / (tp + fn)
        assert values[b] == pytest.approx(2 * precision * recall / (precision + recall), rel=1e-12)
    dice_stats = [{"ref_weighted": a * d, "ref_area": a, "pred_weighted": p * e, "pred_area": p}
                  for a, p, d, e in zip(rng.uniform(100, 900, 30), rng.uniform(100, 900, 30),
                                        rng.uniform(0, 1, 30), rng.uniform(0, 1, 30), strict=True)]
    values, how = unc.reduce_resamples(GLAS["object_dice"], dice_stats, weights)
    c = weights[5]
    w = np.array([[s["ref_weighted"], s["ref_area"], s["pred_weighted"], s["pred_area"]] for s in dice_stats])
    pooled = c @ w
    assert how == "sum" and values[5] == pytest.approx(0.5 * (pooled[0] / pooled[1] + pooled[2] / pooled[3]), rel=1e-12)


def test_a_reducer_that_is_neither_sum_nor_mean_is_reduced_image_by_image() -> None:
    x = np.random.default_rng(5).uniform(size=21)
    weights = unc.resample_weights(np.random.default_rng(6), 21, 30)
    values, how = unc.reduce_resamples(MEDIAN, [{"value": v} for v in x], weights)
    assert how == "exact"
    assert values.tolist() == [float(np.median(np.repeat(x, w))) for w in weights]


def test_holm_by_hand() -> None:
    # sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 -> monotone 0.06
    assert unc.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert unc.holm([0.5, 0.6]) == [1.0, 1.0]
    assert unc.holm([0.2]) == [0.2]


def test_paired_bootstrap_p() -> None:
    assert unc.paired_bootstrap_p(np.ones(999)) == pytest.approx(2 / 1000)
    assert unc.paired_bootstrap_p(np.zeros(999)) == 1.0
    assert unc.paired_bootstrap_p(np.r_[np.ones(500), -np.ones(499)]) == 1.0


def _table(metric: str, scores: dict[str, float], higher: bool, published: dict[str, float] | None = None):  # type: ignore[no-untyped-def]
    """A ranked table (as harness.leaderboard.rank returns it) of one column ``<metric>.test``."""
    rows = [{"entry": e, "source": "measured", "status": "ok", f"{metric}.test.score": f"{v:.4f}"} for e, v in scores.items()]
    rows += [{"entry": e, "source": "published", "status": "ok", f"{metric}.test.score": f"{v:.4f}"} for e, v in (published or {}).items()]
    ranks = sps.rankdata([(-1 if higher else 1) * float(r[f"{metric}.test.score"]) for r in rows], method="min")
    for r, k in zip(rows, ranks, strict=True):
        r[f"{metric}.test.rank"] = int(k)
        r["rank"] = int(k)
    return sorted(rows, key=lambda r: r["rank"])


def test_image_level_metric_separable_and_inseparable_neighbours() -> None:
    n = 60
    a = np.random.default_rng(8).uniform(0.8, 0.9, n)
    b = a - 0.2  # every image clearly worse
    k = np.arange(n) // 2 + 1
    c = b + np.where(np.arange(n) % 2 == 0, 1e-3 * k, -1e-3 * k - 1e-5)  # ± pairs: no consistent shift
    values = {"A": a, "B": b, "C": c}
    images = {e: {0: {"test": {f"i{i:02d}": {"dice": {"value": float(v[i])}} for i in range(n)}}} for e, v in values.items()}
    table = _table("dice", {e: float(v.mean()) for e, v in values.items()}, True, published={"P": 0.99})
    info = unc.annotate(table, images, [RankedMetric("dice", True, ("test",))], {"dice": DICE}, unc.Settings(resamples=500, seed=0))
    rows = {r["entry"]: r for r in table}
    assert [r["entry"] for r in table] == ["P", "A", "B", "C"]
    assert float(rows["B"]["dice.test.p_above"]) < 1e-6  # Wilcoxon, all 60 differences negative
    assert float(rows["C"]["dice.test.p_above"]) > 0.5
    assert rows["A"]["dice.test.p_above"] == "" and rows["P"]["dice.test.lo"] == ""  # published: no interval
    assert float(rows["A"]["dice.test.lo"]) < float(rows["A"]["dice.test.score"]) < float(rows["A"]["dice.test.hi"])
    assert (rows["P"]["dice.test.rank_lo"], rows["P"]["dice.test.rank_hi"]) == ("1", "1")
    assert (rows["A"]["dice.test.rank_lo"], rows["A"]["dice.test.rank_hi"]) == ("2", "2")
    assert float(rows["C"]["dice.test.rank_lo"]) >= 3 and float(rows["B"]["dice.test.rank_hi"]) <= 4
    assert info["reduction"] == {"dice.test": "mean"} and info["resamples"] == 500 and info["seed"] == 0
    assert unc.score_cell(rows["C"], "dice.test", 0.05).startswith(unc.INSEPARABLE)
    assert not unc.score_cell(rows["B"], "dice.test", 0.05).startswith(unc.INSEPARABLE)
    assert unc.score_cell(rows["P"], "dice.test", 0.05) == "0.9900"


def test_split_level_metric_paired_bootstrap_separates_only_real_differences() -> None:
    n = 40
    good = [{"tp": 9.0, "fp": 1.0, "fn": 1.0}] * n
    poor = [{"tp": 3.0, "fp": 6.0, "fn": 7.0}] * n
    near = [dict(s) for s in poor]
    near[0] = {"tp": 4.0, "fp": 5.0, "fn": 6.0}  # one image one object better: not a real difference
    images = {e: {0: {"test": {f"i{i:02d}": {"object_f1": s[i]} for i in range(n)}}} for e, s in
              {"good": good, "near": near, "poor": poor}.items()}
    scores = {e: GLAS["object_f1"].split_values([images[e][0]["test"][i]["object_f1"] for i in sorted(images[e][0]["test"])])["value"]
              for e in images}
    table = _table("object_f1", scores, True)
    info = unc.annotate(table, images, [RankedMetric("object_f1", True, ("test",))], GLAS, unc.Settings(resamples=999, seed=3))
    rows = {r["entry"]: r for r in table}
    assert [r["entry"] for r in table] == ["good", "near", "poor"]
    # every replicate puts good above near: p = 2/1000; the mark: Holm over the 2 neighbour
    # pairs -> 0.004; the map: Holm over all 3 pairs -> 0.006
    assert float(rows["near"]["object_f1.test.p_above"]) == pytest.approx(0.004)
    assert float(rows["poor"]["object_f1.test.p_above"]) > 0.05
    assert info["reduction"] == {"object_f1.test": "sum"}
    pairwise = info["pairwise"]["object_f1.test"]
    assert pairwise["entries"] == ["good", "near", "poor"]
    assert pairwise["p_holm"][0][1] == pairwise["p_holm"][1][0] == pytest.approx(0.006) and pairwise["p_holm"][2][2] == 1.0
    # constant images: the good entry's interval is its point value
    assert rows["good"]["object_f1.test.lo"] == rows["good"]["object_f1.test.hi"] == "0.9000"


def test_seeds_spread_and_intervals_cover_images_and_seeds() -> None:
    n = 10
    images = {"e": {s: {"test": {f"i{i}": {"dice": {"value": v}} for i in range(n)}} for s, v in ((0, 0.5), (1, 0.7))},
              "f": {s: {"test": {f"i{i}": {"dice": {"value": 0.1}} for i in range(n)}} for s in (0, 1)}}
    table = _table("dice", {"e": 0.6, "f": 0.1}, True)
    unc.annotate(table, images, [RankedMetric("dice", True, ("test",))], {"dice": DICE}, unc.Settings(resamples=1000, seed=1))
    row = table[0]
    assert row["dice.test.per_seed"] == "0.5000 0.7000"
    assert row["dice.test.sd"] == f"{np.std([0.5, 0.7], ddof=1):.4f}" == "0.1414"
    # images are constant within a seed; two seeds drawn with replacement: means 0.5, 0.6, 0.7
    # with probabilities 1/4, 1/2, 1/4, so the 95% interval runs from 0.5 to 0.7
    assert (row["dice.test.lo"], row["dice.test.hi"]) == ("0.5000", "0.7000")
    assert table[1]["dice.test.sd"] == "0.0000"


def test_rank_stability_and_kendall_tau_of_a_clear_ranking() -> None:
    rng = np.random.default_rng(9)
    base = rng.uniform(0.0, 0.05, size=30)
    levels = {"a": 0.9, "b": 0.6, "c": 0.3}
    images = {e: {0: {"test": {f"i{i}": {"dice": {"value": lv + float(base[i])}} for i in range(30)}}} for e, lv in levels.items()}
    table = _table("dice", {e: lv + float(base.mean()) for e, lv in levels.items()}, True)
    for r in table:
        r["rank_sum"] = r["dice.test.rank"]
    info = unc.annotate(table, images, [RankedMetric("dice", True, ("test",))], {"dice": DICE}, unc.Settings(resamples=200))
    assert [(r["rank_median"], r["rank_lo"], r["rank_hi"]) for r in table] == [("1", "1", "1"), ("2", "2", "2"), ("3", "3", "3")]
    assert info["kendall_tau"]["overall"] == {"median": 1.0, "lo": 1.0, "hi": 1.0}
    assert float(table[1]["rank_p_above"]) < 0.05
    assert unc.rank_cell(table[1], "", str(table[1]["rank"])) == "2 (2)"


def test_bad_settings_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        unc.Settings(resamples=1)
    with pytest.raises(ValueError, match="confidence"):
        unc.Settings(confidence=1.5)


def test_leaderboard_with_bootstrap_columns_markdown_and_provenance(tmp_path: Path, registry, store: Store) -> None:  # type: ignore[no-untyped-def]
    methods = [("decode", {}), ("decode", {"shift": 1}), ("crash", {})]
    result = run_benchmark(registry, [("squares", {})], methods, [0, 1], metrics=["dice"], store=store)
    text, table, prov = build_leaderboard(registry, store, store.run(result.run_id), "squares", metrics=["dice"],
                                          bootstrap=100, bootstrap_seed=5)
    header = next(csv.reader(io.StringIO(text)))
    assert {"dice.test.lo", "dice.test.hi", "dice.test.rank_lo", "rank_lo", "rank_hi"} <= set(header)
    assert prov["uncertainty"]["resamples"] == 100 and prov["uncertainty"]["seed"] == 5
    perfect, shifted, crashed = table
    assert perfect["dice.test.lo"] == perfect["dice.test.hi"] == "1.0000" and perfect["dice.test.sd"] == "0.0000"
    assert crashed["dice.test.lo"] == "" and crashed["rank_lo"] == ""
    folder, _ = write_version(tmp_path / "lb", "squares", text, prov)
    md = (folder / "leaderboard.md").read_text()
    assert "| 1 (1) | `decode` | 1.0000 ± 0.0000 [1.0000, 1.0000] | 1 (1) |" in md
    assert "B = 100, seed 5" in md and "Per-seed values" in md
    again, _ = build_leaderboard(registry, store, store.run(result.run_id), "squares", metrics=["dice"],
                                 bootstrap=100, bootstrap_seed=5)[:2]
    assert again == text  # seeded: the same table every time
