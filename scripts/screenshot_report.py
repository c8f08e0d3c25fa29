"""Screenshot a bench report page with headless Chromium (Debian's chromium + chromium-driver).

    python scripts/screenshot_report.py report.html docs/images/glas-report.png [WIDTH HEIGHT]
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def main() -> None:
    page, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    width, height = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else (1400, 1800)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        sys.exit("error: no chromium/chromedriver here; run scripts/install-browser.sh")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.get(page.as_uri())
        driver.save_screenshot(str(out))
    finally:
        driver.quit()
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
