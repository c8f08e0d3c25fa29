"""``bench report``: one self-contained HTML page from a leaderboard folder.

The page holds the leaderboard with its bootstrap intervals and the measured timing and memory
(click a header to sort), the published rows marked †, a rank-interval plot per ranked column,
a significance map and the provenance.  Plots are drawn with matplotlib and inlined as SVG:
nothing is fetched when the page is viewed, and the figures are plain vector text that any
browser shows and that stays readable for years.
"""

from __future__ import annotations

import html
import io
import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from harness import uncertainty
from harness.leaderboard import PROFILE_COLUMNS, read_csv
from harness.report import PROFILE_TITLES, timing_footer, timing_mark
from harness.store import Store, write_json_atomic, write_text_atomic

SORT_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var up = th.dataset.dir !== 'asc';
    th.dataset.dir = up ? 'asc' : 'desc';
    function key(row) {
      var text = row.cells[col].dataset.sort !== undefined ? row.cells[col].dataset.sort : row.cells[col].textContent;
      var num = parseFloat(text);
      return isNaN(num) ? text : num;
    }
    rows.sort(function (a, b) {
      var x = key(a), y = key(b);
      if (x === '' || y === '') { return x === '' ? 1 : -1; }
      return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
"""

ENTRY_CLASS = ' class="entry"'
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th { cursor: pointer; background: #f3f3f3; }
td.entry { text-align: left; font-family: monospace; }
tr.published td { color: #555; font-style: italic; }
.note { max-width: 60em; font-size: 0.85em; color: #333; }
.overlay-row figure { display: inline-block; margin: 0 1em 1em 0; font-size: 0.75em; }
.overlay-row h3 { font-family: monospace; font-size: 0.9em; margin: 0.5em 0; }
"""


def _columns(prov: Mapping[str, Any]) -> list[tuple[str, bool]]:
    return [(f"{m['name']}.{s}", m["higher_is_better"]) for m in prov["ranking"]["metrics"] for s in m["splits"]]


def table_html(rows: Sequence[Mapping[str, str]], prov: Mapping[str, Any]) -> str:
    spread = prov.get("uncertainty")
    cols = _columns(prov)
    profile = [c for c in PROFILE_COLUMNS if any(r.get(c) for r in rows)]
    head = (["Rank", "Entry"] + [f"{c.replace('.', ' ')} {'↑' if up else '↓'}" for c, up in cols] + ["Sum of ranks"]
            + [PROFILE_TITLES[c] for c in profile] + ["Status"])
    out = ['<table class="sortable" id="leaderboard"><thead><tr>']
    out += [f"<th>{html.escape(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for r in rows:
        published = r["source"] == "published"
        cells = [(r["rank"], uncertainty.rank_cell(r, "", r["rank"], spread["alpha"], mark=True) if spread else r["rank"])]
        cells.append((r["entry"], r["entry"] + {"published": " †", "submitted": " §"}.get(r["source"], "")))
        for c, _ in cols:
            shown = uncertainty.score_cell(r, c, spread["alpha"]) if spread else r.get(f"{c}.score", "")
            cells.append((r.get(f"{c}.score", ""), shown))
        cells.append((r["rank_sum"], r["rank_sum"]))
        mark = timing_mark(r)
        cells += [(r.get(c, ""), r.get(c, "") + (mark if r.get(c) else "")) for c in profile]
        cells.append((r["status"], r["status"]))
        klass = ' class="published"' if published else ""
        tds = [
            f'<td data-sort="{html.escape(key)}"{ENTRY_CLASS if i == 1 else ""}>{html.escape(text)}</td>'
            for i, (key, text) in enumerate(cells)
        ]
        out.append(f"<tr{klass}>" + "".join(tds) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def rank_plot_svg(rows: Sequence[Mapping[str, str]], prov: Mapping[str, Any]) -> str:
    """Median bootstrap rank and its interval per entry, one panel per ranked column."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranked = [r for r in rows if r.get("rank_lo")]
    panels = [(c, f"{c}.") for c, _ in _columns(prov)] + [("overall", "")]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 0.25 * len(ranked) + 1.2), sharey=True)
    axes = list(axes) if len(panels) > 1 else [axes]
    y = range(len(ranked))
    for ax, (title, prefix) in zip(axes, panels, strict=True):
        med = [float(r[f"{prefix}rank_median"]) for r in ranked]
        lo = [float(r[f"{prefix}rank_lo"]) for r in ranked]
        hi = [float(r[f"{prefix}rank_hi"]) for r in ranked]
        colours = ["#888888" if r["source"] == "published" else "#1f5fa8" for r in ranked]
        ax.hlines(list(y), lo, hi, colors=colours, linewidth=2)
        ax.scatter(med, list(y), c=colours, s=14, zorder=3)
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("rank", fontsize=7)
    axes[0].set_yticks(list(y), [r["entry"] + (" †" if r["source"] == "published" else "") for r in ranked])
    axes[0].invert_yaxis()
    return _svg(fig)


def significance_svg(pairwise: Mapping[str, Any], alpha: float) -> str:
    """Per column, which measured entries the paired tests separate (Holm-adjusted p < alpha);
    entries best first on both axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    panels = [(c, v) for c, v in pairwise.items() if len(v["entries"]) > 1]
    if not panels:
        return ""
    size = max(len(v["entries"]) for _, v in panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(0.3 * size * len(panels) + 2.0, 0.3 * size + 1.8))
    axes = list(axes) if len(panels) > 1 else [axes]
    for ax, (col, v) in zip(axes, panels, strict=True):
        p = np.array(v["p_holm"])
        ax.imshow(p < alpha, cmap="Blues", vmin=0, vmax=1.4)
        ticks = range(len(v["entries"]))
        ax.set_xticks(list(ticks), v["entries"], rotation=90, fontsize=6)
        ax.set_yticks(list(ticks), v["entries"], fontsize=6)
        ax.set_title(col, fontsize=8)
    return _svg(fig)


PerImage = Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]]  # entry -> split -> sample id -> metric -> value


def per_image_values(images: uncertainty.ImageStatistics, specs: Mapping[str, Any]) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """Each image's own value of every ranked metric (mean over seeds), from stored statistics;
    split-level metrics give the value of the image reduced alone."""
    out: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for entry, seeds in images.items():
        for split in sorted({s for k in seeds for s in seeds[k]}):
            ids = sorted({i for k in seeds for i in seeds[k].get(split, {})})
            for sid in ids:
                found = [seeds[k][split][sid] for k in seeds if sid in seeds[k].get(split, {})]
                out.setdefault(entry, {}).setdefault(split, {})[sid] = {
                    name: float(sum(spec.image_value(f[name]) for f in found) / len(found))
                    for name, spec in specs.items() if all(name in f for f in found)
                }
    return out


def strip_plot_svg(values: PerImage, prov: Mapping[str, Any], order: Sequence[str]) -> str:
    """Per metric and split, the per-image values of every measured entry (box + points)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    entries = [e for e in order if e in values]
    cols = [(m["name"], s) for m in prov["ranking"]["metrics"] for s in m["splits"]]
    fig, axes = plt.subplots(1, len(cols), figsize=(2.4 * len(cols), 0.3 * len(entries) + 1.3), sharey=True)
    axes = list(axes) if len(cols) > 1 else [axes]
    jitter = np.random.default_rng(0)
    for ax, (name, split) in zip(axes, cols, strict=True):
        data = [[v[name] for v in values[e].get(split, {}).values() if name in v] for e in entries]
        ax.boxplot(data, orientation="horizontal", widths=0.6, showfliers=False)
        for k, d in enumerate(data):
            ax.scatter(d, k + 1 + jitter.uniform(-0.15, 0.15, len(d)), s=3, alpha=0.5, color="#1f5fa8")
        ax.set_title(f"{name} {split}", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_yticks(range(1, len(entries) + 1), entries)
    axes[0].invert_yaxis()
    return _svg(fig)


def per_image_table(values: PerImage, prov: Mapping[str, Any]) -> str:
    names = [m["name"] for m in prov["ranking"]["metrics"]]
    out = ['<table class="sortable" id="per-image"><thead><tr>']
    out += [f"<th>{html.escape(h)}</th>" for h in ["Entry", "Split", "Image", *names]]
    out.append("</tr></thead><tbody>")
    for entry in sorted(values):
        for split in sorted(values[entry]):
            for sid, v in sorted(values[entry][split].items()):
                cells = [entry, split, sid] + [f"{v[n]:.4f}" if n in v else "" for n in names]
                out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


THUMBNAIL_PX = 200  # longest side of an overlay thumbnail


def overlays_html(store: Store, registry: Any, cells: Sequence[Any], values: PerImage,
                  prov: Mapping[str, Any]) -> str:
    """Per entry, the best, median and worst image by the first ranked metric (on its first
    split): the image with reference contours (green) and predicted contours (magenta), as
    inline PNG thumbnails made from the saved predictions.  '' when none can be drawn."""
    import base64

    import numpy as np
    from PIL import Image

    from harness.predictions import PredictionReader
    from harness.submitted import overlay

    metric = prov["ranking"]["metrics"][0]
    name, split, higher = metric["name"], metric["splits"][0], metric["higher_is_better"]
    first_seed: dict[str, Any] = {}
    for cell in sorted(cells, key=lambda c: c.seed):
        first_seed.setdefault(cell.label, cell)
    datasets: dict[str, Any] = {}
    blocks = []
    for label, cell in sorted(first_seed.items()):
        stage = store.stage(cell.predict_key) if cell.predict_key else None
        scored = {sid: v[name] for sid, v in values.get(label, {}).get(split, {}).items() if name in v}
        if stage is None or not scored:
            continue
        ranked = sorted(scored, key=lambda sid: (scored[sid], sid), reverse=higher)
        picks = [("best", ranked[0]), ("median", ranked[len(ranked) // 2]), ("worst", ranked[-1])]
        number = {e["sample_id"]: e.get("n") for e in stage["images"] if e["split"] == split}
        if cell.dataset not in datasets:
            try:
                datasets[cell.dataset] = registry.dataset(cell.dataset, **(cell.get("dataset_params") or {}))
            except Exception:  # noqa: BLE001 - no dataset files here: no overlays, said on the page
                datasets[cell.dataset] = None
        dataset = datasets[cell.dataset]
        if dataset is None:
            continue
        figures = []
        with PredictionReader(store.stage_dir(cell.predict_key) / "predictions.npz") as reader:
            for what, sid in picks:
                if number.get(sid) is None:
                    continue
                pred = reader.get(number[sid])
                sample = dataset.load(split, sid)
                if pred.instances is None and pred.foreground is None:
                    continue
                predicted = pred.instances if pred.instances is not None else np.asarray(pred.foreground, np.int32)
                reference = sample.instances if sample.instances is not None else sample.foreground.astype(np.int32)
                picture = Image.fromarray(overlay(*_thumbnail(sample.image, reference, predicted)))
                buf = io.BytesIO()
                picture.save(buf, format="PNG", optimize=True)
                data = base64.b64encode(buf.getvalue()).decode()
                caption = f"{what}: {sid[:16]} ({name} {scored[sid]:.3f})"
                figures.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                               f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        if figures:
            blocks.append(f'<div class="overlay-row"><h3>{html.escape(label)}</h3>{"".join(figures)}</div>')
    if not blocks:
        return ""
    return ('<h2>Overlays</h2><p class="note">Best, median and worst image of each entry by '
            f"{html.escape(name)} on {html.escape(split)} (seed of its first cell): reference contours green, "
            'predicted contours magenta.</p><div id="overlays">' + "".join(blocks) + "</div>")


def _thumbnail(image: Any, *labels: Any) -> list[Any]:
    """The image (smooth) and label maps (nearest) scaled so the longest side is
    :data:`THUMBNAIL_PX`; contours drawn afterwards stay one crisp pixel wide."""
    import numpy as np
    from PIL import Image

    height, width = image.shape[:2]
    scale = min(1.0, THUMBNAIL_PX / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    out = [np.asarray(Image.fromarray(np.ascontiguousarray(image[..., :3])).resize(size, Image.Resampling.LANCZOS))]
    out += [np.asarray(Image.fromarray(lab.astype(np.int32)).resize(size, Image.Resampling.NEAREST)) for lab in labels]
    return out


def render_html(folder: Path, values: PerImage | None = None, overlays: str = "") -> str:
    """The page of a leaderboard folder; ``values`` (per-image metric values, when the run's
    store is at hand) adds the per-image distributions and the per-image table, ``overlays``
    (from :func:`overlays_html`) the overlay thumbnails."""
    rows = read_csv(folder / "leaderboard.csv")
    with open(folder / "run.json") as fh:
        prov: dict[str, Any] = json.load(fh)
    spread = prov.get("uncertainty")
    title = f"Leaderboard: {prov['dataset']} ({prov.get('leaderboard_version', folder.name)})"
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        table_html(rows, prov),
    ]
    timings = timing_footer(rows, [c for c in PROFILE_COLUMNS if any(r.get(c) for r in rows)])
    if timings:
        parts.append("<p class=\"note\">" + html.escape(timings.replace("`", "")) + "</p>")
    if spread:
        parts.append("<p class=\"note\">" + html.escape(" ".join(uncertainty.footer(spread))) + "</p>")
        parts += ["<h2>Bootstrap ranks</h2>", '<div id="ranks">', rank_plot_svg(rows, prov), "</div>",
                  "<p class=\"note\">Median bootstrap rank (dot) and its interval (bar); grey: published.</p>"]
        significance = significance_svg(spread.get("pairwise", {}), spread["alpha"])
        if significance:
            parts += ["<h2>Significance map</h2>", '<div id="significance">', significance, "</div>",
                      f"<p class=\"note\">Dark: the pair is separated (Holm-adjusted p &lt; {spread['alpha']:g}); "
                      "measured entries only, best first on both axes.</p>"]
    else:
        parts.append("<p class=\"note\">This leaderboard was written without bootstrap intervals.</p>")
    if values:
        parts += ["<h2>Per-image values</h2>", '<div id="distributions">',
                  strip_plot_svg(values, prov, [r["entry"] for r in rows]), "</div>",
                  "<p class=\"note\">Each image's own value (split-level metrics: the image reduced alone; "
                  "mean over seeds). Click a header of the table to sort.</p>", per_image_table(values, prov)]
    if overlays:
        parts.append(overlays)
    shown = {k: prov.get(k) for k in ("segbench", "machine", "seeds", "budget", "run_id", "run_command", "date",
                                      "dataset_version", "uncertainty")}
    parts += ["<h2>Provenance</h2>", "<pre>", html.escape(json.dumps(shown, indent=1, sort_keys=True)), "</pre>",
              f"<script>{SORT_SCRIPT}</script></body></html>"]
    return "\n".join(parts) + "\n"


@click.command("report")
@click.option("--leaderboard", "folder", type=click.Path(path_type=Path), default=None,
              help="A leaderboard folder (leaderboards/<dataset>/<version>) or a dataset folder (its LATEST).")
@click.option("--run", "run_id", default=None, help="A run id in the store instead: adds per-image plots and table.")
@click.option("--store", "store_path", type=click.Path(path_type=Path), envvar="BENCH_RUNS", default="runs", show_default=True)
@click.option("--dataset", default=None, help="Dataset of the run (default: its first).")
@click.option("--reference", default=None,
              help="Published results (with --run): a table the dataset ships, by name (e.g. glas2015), or a CSV file.")
@click.option("--reference-citation", default=None)
@click.option("--bootstrap", type=click.IntRange(min=0), default=uncertainty.DEFAULT_RESAMPLES, show_default=True)
@click.option("--bootstrap-seed", type=int, default=uncertainty.DEFAULT_SEED, show_default=True)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default="report.html", show_default=True)
@click.pass_context
def report_cmd(ctx: click.Context, folder: Path | None, run_id: str | None, store_path: Path, dataset: str | None,
               reference: str | None, reference_citation: str | None, bootstrap: int, bootstrap_seed: int, out: Path) -> None:
    """Write one self-contained HTML page (no network needed) from a leaderboard folder or a run."""
    if (folder is None) == (run_id is None):
        raise click.UsageError("pass exactly one of --leaderboard DIR or --run RUN_ID")
    if run_id is not None:
        write_text_atomic(out, _from_run(ctx, Store(store_path), run_id, dataset, reference, reference_citation,
                                         bootstrap, bootstrap_seed))
    else:
        assert folder is not None
        if (folder / "LATEST").is_file():
            folder = folder / (folder / "LATEST").read_text().strip()
        for name in ("leaderboard.csv", "run.json"):
            if not (folder / name).is_file():
                raise click.UsageError(f"--leaderboard {folder}: no {name} there; pass a folder written by 'bench leaderboard'")
        write_text_atomic(out, render_html(folder))
    click.echo(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")


def _from_run(ctx: click.Context, store: Store, run_id: str, dataset: str | None, reference_text: str | None,
              citation: str | None, bootstrap: int, seed: int) -> str:
    from harness.bench import build_leaderboard
    from harness.cli import registry_from
    from harness.commands.leaderboard import datasets_in_run, resolve_reference

    registry = registry_from(ctx)
    run = store.run(run_id)
    dataset = dataset or datasets_in_run(store, run)[0]
    reference, citation = resolve_reference(registry, dataset, reference_text, citation)
    text, _, prov = build_leaderboard(registry, store, run, dataset, reference=reference, reference_citation=citation,
                                      bootstrap=bootstrap, bootstrap_seed=seed)
    cells = [c for c in (store.cell(k) for k in prov["cells"]) if c is not None]
    specs = {m["name"]: registry.metric(m["name"]) for m in prov["ranking"]["metrics"]}
    values = per_image_values(uncertainty.image_statistics(store, cells), specs)
    overlays = overlays_html(store, registry, cells, values, prov)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / f"run-{run['run_id']}"
        write_text_atomic(folder / "leaderboard.csv", text)
        write_json_atomic(folder / "run.json", {**prov, "leaderboard_version": f"run {run['run_id']}"})
        return render_html(folder, values, overlays)


COMMANDS = [report_cmd]


def _svg(fig: Any) -> str:
    """The figure as inline SVG markup (the XML prologue dropped), the figure closed."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]
