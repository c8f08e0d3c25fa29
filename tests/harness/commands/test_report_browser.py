"""``bench report`` in a real browser: headless Chromium driven by Selenium.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium
chromium-driver``); skipped with that reason where they are not installed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.bench import build_leaderboard, run_benchmark
from harness.commands.report import render_html
from harness.leaderboard import read_csv, write_version
from harness.store import Store

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="no Chromium here: apt-get install -y chromium chromium-driver"
)


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def test_report_loads_sorts_and_draws_in_chromium(tmp_path: Path, registry, store: Store, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    methods = [("decode", {}), ("decode", {"shift": 1}), ("decode", {"shift": 2})]
    result = run_benchmark(registry, [("squares", {})], methods, [0], metrics=["dice"], store=store)
    reference = tmp_path / "published.csv"
    reference.write_text("entry,split,dice\nPaper,test,0.8\n")
    text, _, prov = build_leaderboard(registry, store, store.run(result.run_id), "squares", metrics=["dice"],
                                      reference=reference, bootstrap=50)
    folder, _ = write_version(tmp_path / "lb", "squares", text, prov)
    page = tmp_path / "report.html"
    page.write_text(render_html(folder))
    browser.get(page.as_uri())

    rows = browser.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")
    assert len(rows) == len(read_csv(folder / "leaderboard.csv")) == 4
    assert len(browser.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr.published")) == 1
    figures = browser.find_elements(By.CSS_SELECTOR, "#ranks svg, #significance svg")
    assert len(figures) == 2 and all(f.size["width"] > 0 and f.size["height"] > 0 for f in figures)

    def column(k: int) -> list[str]:
        return [r.find_elements(By.TAG_NAME, "td")[k].text for r in browser.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")]

    headers = browser.find_elements(By.CSS_SELECTOR, "#leaderboard thead th")
    headers[1].click()  # Entry, ascending
    assert column(1) == sorted(column(1))
    headers[2].click()  # the score, ascending then descending
    scores = [float(s.lstrip("≈ ").split()[0]) for s in column(2)]
    assert scores == sorted(scores)
    headers[2].click()
    assert [float(s.lstrip("≈ ").split()[0]) for s in column(2)] == sorted(scores, reverse=True)

    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
    browser.save_screenshot(str(tmp_path / "report.png"))
    assert (tmp_path / "report.png").stat().st_size > 0


def test_overlays_from_saved_predictions_decode_in_chromium(tmp_path: Path, invoke, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    assert invoke("run", "--methods", "otsu,otsu(min_size=30)", "--quiet").exit_code == 0
    result = invoke("report", "--run", "latest", "--out", "report.html", "--bootstrap", "50")
    assert result.exit_code == 0, result.output
    browser.get((tmp_path / "report.html").as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "#overlays .overlay-row")
    assert [r.find_element(By.TAG_NAME, "h3").text for r in rows] == ["otsu", "otsu(min_size=30)"]
    images = browser.find_elements(By.CSS_SELECTOR, "#overlays img")
    assert len(images) == 6  # best, median and worst of each entry
    widths = [browser.execute_script("return arguments[0].naturalWidth", img) for img in images]
    assert all(w == 200 for w in widths), widths  # decoded, at the thumbnail size (256² images)
    captions = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#overlays figcaption")]
    assert [c.split(":")[0] for c in captions] == ["best", "median", "worst"] * 2
    scores = [float(c.rsplit(" ", 1)[1].rstrip(")")) for c in captions]  # dsb_map, higher is better
    assert scores[0] >= scores[1] >= scores[2] and scores[3] >= scores[4] >= scores[5]
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    browser.save_screenshot(str(tmp_path / "overlays.png"))
