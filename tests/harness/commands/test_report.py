"""``bench report``: a self-contained HTML page from a leaderboard folder."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from click.testing import CliRunner

from harness.bench import build_leaderboard, run_benchmark
from harness.commands.report import report_cmd
from harness.leaderboard import read_csv, write_version
from harness.store import Store


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, list[str]]] = []
        self.external: list[str] = []
        self.svg = 0
        self._in_body = False
        self._cells: list[str] | None = None
        self._klass = ""

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        a = dict(attrs)
        for key in ("src", "href"):
            if a.get(key) and not str(a[key]).startswith(("#", "data:")):
                self.external.append(f"{tag} {key}={a[key]}")
        if tag == "link":
            self.external.append("link")
        self.svg += tag == "svg"
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._cells, self._klass = [], a.get("class") or ""
        elif tag == "td" and self._cells is not None:
            self._cells.append("")

    def handle_data(self, data):  # type: ignore[no-untyped-def]
        if self._cells:
            self._cells[-1] += data

    def handle_endtag(self, tag):  # type: ignore[no-untyped-def]
        if tag == "tr" and self._cells is not None:
            self.rows.append((self._klass, self._cells))
            self._cells = None
        elif tag == "tbody":
            self._in_body = False


def test_report_is_one_self_contained_page(tmp_path: Path, registry, store: Store) -> None:  # type: ignore[no-untyped-def]
    result = run_benchmark(registry, [("squares", {})], [("decode", {}), ("decode", {"shift": 1})], [0], metrics=["dice"], store=store)
    reference = tmp_path / "published.csv"
    reference.write_text("entry,split,dice\nPaper,test,0.8\n")
    text, _, prov = build_leaderboard(registry, store, store.run(result.run_id), "squares", metrics=["dice"],
                                      reference=reference, bootstrap=50)
    folder, _ = write_version(tmp_path / "lb", "squares", text, prov)
    out = tmp_path / "report.html"
    res = CliRunner().invoke(report_cmd, ["--leaderboard", str(folder.parent), "--out", str(out)])
    assert res.exit_code == 0, res.output
    page = Page()
    page.feed(out.read_text())
    entries = [cells[1] for _, cells in page.rows]
    assert entries == [r["entry"] + (" †" if r["source"] == "published" else "") for r in read_csv(folder / "leaderboard.csv")]
    assert entries == ["decode", "Paper †", "decode(shift=1)"]
    assert [k for k, _ in page.rows] == ["", "published", ""]
    assert page.rows[0][1][2] == "1.0000 [1.0000, 1.0000]" and page.rows[1][1][2] == "0.8000"
    assert "<th>p50 (ms)</th>" in out.read_text()  # timing beside the scores
    assert page.external == [] and page.svg >= 2  # rank intervals and significance map, inline


def test_report_of_a_folder_without_a_leaderboard_is_a_clear_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(report_cmd, ["--leaderboard", str(tmp_path), "--out", str(tmp_path / "r.html")])
    assert res.exit_code == 2 and "no leaderboard.csv there" in res.output and not (tmp_path / "r.html").exists()


def test_report_of_a_run_adds_per_image_values(tmp_path: Path, registry, store: Store) -> None:  # type: ignore[no-untyped-def]
    result = run_benchmark(registry, [("squares", {})], [("decode", {}), ("decode", {"shift": 1})], [0, 1], metrics=["dice"], store=store)
    out = tmp_path / "run.html"
    res = CliRunner().invoke(report_cmd, ["--run", result.run_id, "--store", str(store.root), "--bootstrap", "50",
                                          "--out", str(out)], obj=registry)
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert 'id="distributions"' in text and 'id="per-image"' in text
    body = text[text.index('id="per-image"'):]
    # two entries × two test images; decode(shift=1) on image a: dice of a 4×4 square shifted by one column = 0.75
    assert body.count("<tr>") == 1 + 4
    assert "<td>decode(shift=1)</td><td>test</td><td>a</td><td>0.7500</td>" in body


def test_report_needs_exactly_one_source(tmp_path: Path) -> None:
    res = CliRunner().invoke(report_cmd, ["--out", str(tmp_path / "r.html")])
    assert res.exit_code == 2 and "exactly one of --leaderboard DIR or --run RUN_ID" in res.output
