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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from harness import uncertainty
from harness.leaderboard import PROFILE_COLUMNS, read_csv
from harness.report import PROFILE_TITLES
from harness.store import write_text_atomic

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
        cells.append((r["entry"], r["entry"] + (" †" if published else "")))
        for c, _ in cols:
            shown = uncertainty.score_cell(r, c, spread["alpha"]) if spread else r.get(f"{c}.score", "")
            cells.append((r.get(f"{c}.score", ""), shown))
        cells.append((r["rank_sum"], r["rank_sum"]))
        cells += [(r.get(c, ""), r.get(c, "")) for c in profile]
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
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


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
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def render_html(folder: Path) -> str:
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
    shown = {k: prov.get(k) for k in ("segbench", "machine", "seeds", "budget", "run_id", "run_command", "date",
                                      "dataset_version", "uncertainty")}
    parts += ["<h2>Provenance</h2>", "<pre>", html.escape(json.dumps(shown, indent=1, sort_keys=True)), "</pre>",
              f"<script>{SORT_SCRIPT}</script></body></html>"]
    return "\n".join(parts) + "\n"


@click.command("report")
@click.option("--leaderboard", "folder", type=click.Path(path_type=Path), required=True,
              help="A leaderboard folder (leaderboards/<dataset>/<version>) or a dataset folder (its LATEST).")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default="report.html", show_default=True)
def report_cmd(folder: Path, out: Path) -> None:
    """Write one self-contained HTML page (no network needed) from a leaderboard folder."""
    if (folder / "LATEST").is_file():
        folder = folder / (folder / "LATEST").read_text().strip()
    for name in ("leaderboard.csv", "run.json"):
        if not (folder / name).is_file():
            raise click.UsageError(f"--leaderboard {folder}: no {name} there; pass a folder written by 'bench leaderboard'")
    write_text_atomic(out, render_html(folder))
    click.echo(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")


COMMANDS = [report_cmd]
