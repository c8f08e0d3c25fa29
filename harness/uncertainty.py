"""Bootstrap intervals, rank stability and paired significance for leaderboards.

Everything here is computed from the per-image sufficient statistics already in the store;
no method is run again.

* **Intervals.** For every measured entry, ranked metric and split: a percentile bootstrap
  interval over the split's images.  A resample is a vector of multinomial counts over the
  images (``numpy.random.Generator.multinomial``), shared by every entry so that comparisons
  are paired.  The resampled split value is the metric plugin's own ``reduce`` applied to the
  resampled images, so split-level metrics (GlaS object F1/Dice/Hausdorff, pooled AJI, pooled
  PQ) are pooled again per resample exactly as the point value is.  To make B = 1000 cheap,
  the resample's statistics are first aggregated with one matrix product into a single
  pseudo-image (their weighted sum, or their weighted mean) and ``reduce`` is called on that;
  this is used only after checking, on the point value and on the first resamples, that it
  gives what ``reduce`` gives on the resampled list itself (true for every reducer that sees
  its images only through sums or means of their statistics); otherwise every resample is
  reduced from its list of images.
* **Seeds.** The point value is the mean over seeds of the split values.  Within each image
  resample the seeds are resampled too (with replacement, as many as were run), and the
  replicate is the mean of the resampled seeds' values on the resampled images: the interval
  spreads over both images and seeds.  The standard deviation across seeds and the per-seed
  values are reported beside it.
* **Ranks.** In every replicate each column is ranked again (standard competition ranking on
  values rounded as in the table), ranks are summed and the overall rank is formed as in the
  table.  Published entries have no per-image statistics: they stay at their published values
  (no score interval), but their rank still moves with the measured entries around them.
  Reported: median rank and the 2.5–97.5 percentile interval, and Kendall's τ
  (``scipy.stats.kendalltau``) between each replicate's ranking and the table's.
* **Significance.** Between measured entries on the same images: Wilcoxon signed-rank
  (``scipy.stats.wilcoxon``) on per-image values (averaged over seeds) for image-level
  metrics; paired bootstrap (two-sided, from the shared replicates) for split-level metrics
  and for the sum of ranks.  p-values are Holm-adjusted over all pairs of a column (over the
  adjacent pairs for the overall rank); an entry whose adjusted p against the next better
  measured entry is at least ``alpha`` cannot be separated from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from harness.types import MetricSpec

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
CHECKED_RESAMPLES = 5
INSEPARABLE = "≈"
# per column "<metric>.<split>" and for the overall rank
COLUMN_FIELDS = ("lo", "hi", "sd", "per_seed", "rank_median", "rank_lo", "rank_hi", "p_above")
OVERALL_FIELDS = ("rank_median", "rank_lo", "rank_hi", "rank_p_above")

Stats = Mapping[str, float]
# entry label -> seed -> split -> sample id -> metric name -> statistics
ImageStatistics = Mapping[str, Mapping[int, Mapping[str, Mapping[str, Mapping[str, Stats]]]]]


@dataclass(frozen=True)
class Settings:
    resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED
    confidence: float = 0.95
    alpha: float = 0.05
    decimals: int = 4

    def __post_init__(self) -> None:
        if self.resamples < 2:
            raise ValueError(f"bootstrap resamples must be at least 2 (got {self.resamples}); pass 0 to turn intervals off")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must lie strictly between 0 and 1 (got {self.confidence})")

    def describe(self) -> dict[str, Any]:
        return {
            "resamples": self.resamples,
            "seed": self.seed,
            "confidence": self.confidence,
            "alpha": self.alpha,
            "interval": "percentile bootstrap over images; seeds resampled within each image resample",
            "image_level_test": "Wilcoxon signed-rank on per-image values (mean over seeds)",
            "split_level_test": "paired bootstrap on the shared resamples",
            "multiple_comparisons": "Holm over all pairs of a column; over adjacent pairs for the overall rank",
        }


# ---- building blocks ------------------------------------------------------------------------


def resample_weights(rng: np.random.Generator, n_images: int, resamples: int) -> np.ndarray:
    """(resamples, n_images) counts: how often each image is drawn in each resample."""
    if n_images < 1:
        raise ValueError("cannot resample a split with no images")
    return rng.multinomial(n_images, np.full(n_images, 1.0 / n_images), size=resamples)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _value(spec: MetricSpec, stats: Sequence[Stats]) -> float:
    v = float(spec.reduce(stats)["value"])
    if math.isnan(v):
        raise ValueError(f"metric {spec.name!r} produced NaN on a bootstrap resample")
    return v


def reduce_resamples(spec: MetricSpec, stats: Sequence[Stats], weights: np.ndarray) -> tuple[np.ndarray, str]:
    """The split value of every resample (rows of ``weights``), by the metric's own reduce.

    Returns (values, how): ``how`` is ``"sum"`` or ``"mean"`` when the aggregated
    pseudo-image was verified to reproduce the reduction of the resampled images, else
    ``"exact"`` (each resample reduced from its own list of images)."""
    n = len(stats)
    if weights.shape[1] != n:
        raise ValueError(f"{weights.shape[1]} resampling weights for {n} images")

    def exact(b: int) -> float:
        return _value(spec, [stats[int(i)] for i in np.repeat(np.arange(n), weights[b])])

    keys = sorted(stats[0])
    if all(sorted(s) == keys for s in stats):
        matrix = np.array([[float(s[k]) for k in keys] for s in stats])
        point = _value(spec, stats)
        checked = [exact(b) for b in range(min(CHECKED_RESAMPLES, len(weights)))]
        for how, scale in (("sum", 1.0), ("mean", 1.0 / n)):
            aggregated = (weights @ matrix) * scale

            def pseudo(row: np.ndarray) -> float:
                return _value(spec, [dict(zip(keys, row.tolist(), strict=True))])

            if not _close(pseudo(matrix.sum(axis=0) * scale), point):
                continue
            if all(_close(pseudo(aggregated[b]), v) for b, v in enumerate(checked)):
                return np.array([pseudo(row) for row in aggregated]), how
    return np.array([exact(b) for b in range(len(weights))]), "exact"


def percentile_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    tail = 100.0 * (1.0 - confidence) / 2.0
    lo, hi = np.percentile(values, [tail, 100.0 - tail])
    return float(lo), float(hi)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, made monotone, capped at 1)."""
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out.tolist()


def paired_bootstrap_p(differences: np.ndarray) -> float:
    """Two-sided p of "no difference" from bootstrap replicates of a paired difference."""
    d = np.asarray(differences)
    below = int(np.count_nonzero(d <= 0)) + 1
    above = int(np.count_nonzero(d >= 0)) + 1
    return min(1.0, 2.0 * min(below, above) / (len(d) + 1))


def wilcoxon_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p of paired per-image values (1.0 when identical)."""
    if np.allclose(a, b, rtol=0.0, atol=1e-12):
        return 1.0
    from scipy import stats  # imported where used: scipy.stats costs ~0.7 s, every command paid it

    return float(stats.wilcoxon(a, b).pvalue)


def competition_ranks(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Competition ranks ("1224") along the last axis."""
    from scipy import stats

    return stats.rankdata(-values if higher_is_better else values, method="min", axis=-1).astype(int)


# ---- the leaderboard ------------------------------------------------------------------------


def image_statistics(store: Any, cells: Sequence[Mapping[str, Any]]) -> dict[str, dict[int, dict[str, dict[str, dict[str, Stats]]]]]:
    """Per-image statistics of the finished cells, by entry, seed, split and sample id."""
    out: dict[str, dict[int, dict[str, dict[str, dict[str, Stats]]]]] = {}
    for record in cells:
        if record.get("status") != "done":
            continue
        per_split: dict[str, dict[str, dict[str, Stats]]] = {}
        for row in store.images(record["key"]):
            if row.get("stats"):
                per_split.setdefault(row["split"], {})[row["sample_id"]] = row["stats"]
        out.setdefault(record["label"], {})[record["seed"]] = per_split
    return out


def extra_columns(metrics: Sequence[Any]) -> list[str]:
    """CSV columns added to the leaderboard, after its own."""
    cols = [f"{m.name}.{s}.{f}" for m in metrics for s in m.splits for f in COLUMN_FIELDS]
    return cols + list(OVERALL_FIELDS)


def annotate(
    table: Sequence[dict[str, Any]],
    images: ImageStatistics,
    metrics: Sequence[Any],
    specs: Mapping[str, MetricSpec],
    settings: Settings = Settings(),  # noqa: B008 - frozen dataclass
) -> dict[str, Any]:
    """Add the :func:`extra_columns` to every row of a ranked ``table`` (in place) and return
    what goes into the provenance (settings, Kendall's τ, how each column was reduced)."""
    fmt = f"{{:.{settings.decimals}f}}"
    for row in table:
        row.update(dict.fromkeys(extra_columns(metrics), ""))
    rankable = [r for r in table if r["rank"] != ""]
    rng = np.random.default_rng(settings.seed)
    B = settings.resamples
    cols = [(m, s) for m in metrics for s in m.splits]
    splits = sorted({s for _, s in cols})

    def complete(entry: str) -> bool:
        seeds = images.get(entry, {})
        return bool(seeds) and all(s in seeds[k] for k in seeds for s in splits)

    measured = [r for r in rankable if r["source"] in ("measured", "submitted") and complete(r["entry"])]
    ids: dict[str, list[str]] = {}
    for split in splits:
        found = [set(images[r["entry"]][k][split]) for r in measured for k in images[r["entry"]]]
        ids[split] = sorted(set().union(*found)) if found else []
        full = set(ids[split])
        measured = [r for r in measured if all(set(images[r["entry"]][k][split]) == full for k in images[r["entry"]])]
    weights = {s: resample_weights(rng, len(ids[s]), B) for s in splits if ids[s]}
    seed_draws = {}
    for r in measured:
        n_seeds = len(images[r["entry"]])
        seed_draws[r["entry"]] = rng.integers(n_seeds, size=(B, n_seeds))

    boot: dict[str, dict[str, np.ndarray]] = {}
    per_image: dict[str, dict[str, np.ndarray]] = {}
    how: dict[str, str] = {}
    for m, split in cols:
        col = f"{m.name}.{split}"
        spec = specs[m.name]
        boot[col], per_image[col] = {}, {}
        for r in measured:
            seeds = images[r["entry"]]
            replicates, points, image_values = [], [], []
            for k in sorted(seeds):
                stats = [seeds[k][split][i][m.name] for i in ids[split]]
                values, how[col] = reduce_resamples(spec, stats, weights[split])
                replicates.append(values)
                points.append(_value(spec, stats))
                image_values.append([spec.image_value(s) for s in stats])
            matrix = np.array(replicates)  # (seeds, B)
            draws = seed_draws[r["entry"]]
            boot[col][r["entry"]] = matrix[draws, np.arange(B)[:, None]].mean(axis=1)
            per_image[col][r["entry"]] = np.mean(image_values, axis=0)
            lo, hi = percentile_interval(boot[col][r["entry"]], settings.confidence)
            r[f"{col}.lo"], r[f"{col}.hi"] = fmt.format(lo), fmt.format(hi)
            if len(points) > 1:
                r[f"{col}.sd"] = fmt.format(float(np.std(points, ddof=1)))
                r[f"{col}.per_seed"] = " ".join(fmt.format(p) for p in points)

    info: dict[str, Any] = {**settings.describe(), "reduction": how}
    if not rankable:
        return info

    # rank stability: every column ranked again in every replicate
    rank_sums = np.zeros((B, len(rankable)), dtype=int)
    tau: dict[str, list[float]] = {}
    for m, split in cols:
        col = f"{m.name}.{split}"
        scores = np.array(
            [np.round(boot[col][r["entry"]], settings.decimals) if r["entry"] in boot[col]
             else np.full(B, float(r[f"{col}.score"])) for r in rankable]
        ).T  # (B, entries)
        ranks = competition_ranks(scores, m.higher_is_better)
        rank_sums += ranks
        _rank_summary(rankable, ranks, f"{col}.", settings)
        tau[col] = _kendall(np.array([r[f"{col}.rank"] for r in rankable]), ranks)
    overall = competition_ranks(rank_sums.astype(float), higher_is_better=False)
    _rank_summary(rankable, overall, "", settings)
    tau["overall"] = _kendall(np.array([r["rank"] for r in rankable]), overall)
    info["kendall_tau"] = {
        k: {"median": round(float(np.median(v)), 4), **dict(zip(("lo", "hi"), (round(x, 4) for x in percentile_interval(np.array(v), settings.confidence)), strict=True))}
        for k, v in tau.items() if v
    }

    # significance: all measured pairs of a column, Holm-adjusted; marks against the next better
    for m, split in cols:
        col = f"{m.name}.{split}"
        order = sorted(measured, key=lambda r: (-1 if m.higher_is_better else 1) * float(r[f"{col}.score"]))
        pairs = list(combinations(range(len(order)), 2))
        if not pairs:
            continue
        level = specs[m.name].level
        raw = []
        for i, j in pairs:
            a, b = order[i]["entry"], order[j]["entry"]
            if level == "image":
                raw.append(wilcoxon_p(per_image[col][a], per_image[col][b]))
            else:
                raw.append(paired_bootstrap_p(boot[col][a] - boot[col][b]))
        adjusted = dict(zip(pairs, holm(raw), strict=True))
        # the marks compare each entry with its next better neighbour: Holm over those pairs
        # (over all pairs, a bootstrap p-value's floor of 2/(B + 1) times 28 pairs of 8 entries
        # is above 0.05 at B = 1000, and no split-level neighbour could ever be separated)
        raw_of = dict(zip(pairs, raw, strict=True))
        neighbours = holm([raw_of[(j - 1, j)] for j in range(1, len(order))])
        for j in range(1, len(order)):
            order[j][f"{col}.p_above"] = fmt.format(neighbours[j - 1])
        if level != "image" and min(1.0, len(pairs) * 2.0 / (B + 1)) >= settings.alpha:
            info.setdefault("map_floor", {})[col] = {"pairs": len(pairs), "min_p_holm": round(len(pairs) * 2.0 / (B + 1), 6)}
        info.setdefault("pairwise", {})[col] = {
            "entries": [r["entry"] for r in order],
            "p_holm": [[1.0 if i == j else round(adjusted[(min(i, j), max(i, j))], 6) for j in range(len(order))]
                       for i in range(len(order))],
        }
    measured_ids = {id(r) for r in measured}
    chain = [k for k, r in enumerate(rankable) if id(r) in measured_ids]
    adjacent = list(zip(chain, chain[1:], strict=False))
    if adjacent:
        raw = [paired_bootstrap_p(rank_sums[:, i] - rank_sums[:, j]) for i, j in adjacent]
        for (_, j), p in zip(adjacent, holm(raw), strict=True):
            rankable[j]["rank_p_above"] = fmt.format(p)
    return info


def _rank_summary(rows: Sequence[dict[str, Any]], ranks: np.ndarray, prefix: str, settings: Settings) -> None:
    tail = 100.0 * (1.0 - settings.confidence) / 2.0
    for k, r in enumerate(rows):
        # ranks are whole numbers: the interval ends are ranks that occurred, not interpolations
        lo, hi = np.percentile(ranks[:, k], [tail, 100.0 - tail], method="inverted_cdf")
        r[f"{prefix}rank_median"] = f"{float(np.median(ranks[:, k])):g}"
        r[f"{prefix}rank_lo"], r[f"{prefix}rank_hi"] = f"{lo:g}", f"{hi:g}"


def _kendall(published: np.ndarray, replicates: np.ndarray) -> list[float]:
    if len(published) < 2 or len(set(published.tolist())) < 2:
        return []
    from scipy import stats

    taus = [stats.kendalltau(published, rep).statistic for rep in replicates]
    return [float(t) for t in taus if not math.isnan(t)]


# ---- rendering (markdown) -------------------------------------------------------------------


def inseparable(row: Mapping[str, str], prefix: str, alpha: float) -> bool:
    p = row.get(f"{prefix}p_above", "")
    return p != "" and float(p) >= alpha


def score_cell(row: Mapping[str, str], col: str, alpha: float) -> str:
    """``0.8123 ± 0.0040 [0.7900, 0.8300]`` (± only with several seeds; ≈ marks a tie)."""
    score = row.get(f"{col}.score", "")
    if not score or not row.get(f"{col}.lo"):
        return score
    sd = f" ± {row[f'{col}.sd']}" if row.get(f"{col}.sd") else ""
    mark = f"{INSEPARABLE} " if inseparable(row, f"{col}.", alpha) else ""
    return f"{mark}{score}{sd} [{row[f'{col}.lo']}, {row[f'{col}.hi']}]"


def rank_cell(row: Mapping[str, str], prefix: str, rank: str, alpha: float = 1.0, mark: bool = False) -> str:
    """``3 (2–5)``: the rank and its bootstrap interval; ≈ when not separable from the row above."""
    if rank == "" or not row.get(f"{prefix}rank_lo"):
        return rank
    sign = f"{INSEPARABLE} " if mark and inseparable(row, prefix + "rank_", alpha) else ""
    lo, hi = row[f"{prefix}rank_lo"], row[f"{prefix}rank_hi"]
    return f"{sign}{rank} ({lo}–{hi})" if lo != hi else f"{sign}{rank} ({lo})"


def footer(info: Mapping[str, Any]) -> list[str]:
    pct = f"{100 * info['confidence']:g}%"
    line = (
        f"Uncertainty: [lo, hi] is a {pct} percentile bootstrap interval over images (B = {info['resamples']}, "
        f"seed {info['seed']}): the per-image statistics are resampled and every split-level metric is pooled "
        "again per resample; with several seeds, seeds are resampled within each image resample, and ± is "
        f"the standard deviation across seeds. (lo–hi) after a rank is its {pct} bootstrap interval. "
        f"{INSEPARABLE} marks an entry that cannot be separated from the next better measured entry in that "
        f"column (Holm-adjusted p ≥ {info['alpha']:g}; Wilcoxon signed-rank for image-level metrics, paired "
        "bootstrap for split-level metrics and for the sum of ranks). † published results have no per-image "
        "statistics: no interval, held at their published values in the rank bootstrap, never tested."
    )
    tau = info.get("kendall_tau", {}).get("overall")
    if tau:
        line += (f" Kendall's τ between bootstrap rankings and this ranking: median {tau['median']:.3f} "
                 f"[{tau['lo']:.3f}, {tau['hi']:.3f}].")
    floor = info.get("map_floor")
    if floor:
        worst = max(floor.values(), key=lambda f: f["pairs"])
        line += (f" The ≈ marks use Holm over the neighbour pairs of a column; the significance map over all "
                 f"{worst['pairs']} pairs cannot separate split-level pairs at B = {info['resamples']} (smallest "
                 f"attainable adjusted p {worst['min_p_holm']:g}): raise --bootstrap for it.")
    return [line]


def per_seed_table(rows: Sequence[Mapping[str, str]], metrics: Sequence[Mapping[str, Any]]) -> list[str]:
    """A markdown table of the per-seed values (none when every entry ran one seed)."""
    cols = [f"{m['name']}.{s}" for m in metrics for s in m["splits"]]
    shown = [r for r in rows if any(r.get(f"{c}.per_seed") for c in cols)]
    if not shown:
        return []
    lines = ["", "Per-seed values (seed order as in the Seeds column):", "",
             "| Entry | Seeds | " + " | ".join(c.replace(".", " ") for c in cols) + " |",
             "| :--- | :--- | " + " | ".join("---:" for _ in cols) + " |"]
    for r in shown:
        cells = [f"`{r['entry']}`", r.get("seeds", "")] + [r.get(f"{c}.per_seed", "").replace(" ", " / ") for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return lines
