"""A headless Chromium for the page tests: Debian's ``chromium`` driven through ``chromium-driver`` (selenium).

The tests skip, saying why, only where no browser is installed; CI installs one (.ci/run), and
with ``CI`` set a missing browser fails instead of skipping.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
)


def find() -> tuple[str, str]:
    """(chromium, chromedriver) paths; skipped (failed in CI) when either is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    why = "no headless browser: chromium and chromium-driver not found (apt-get install -y chromium chromium-driver)"
    if os.environ.get("CI"):
        pytest.fail(why + "; .ci/run installs them")
    pytest.skip(why)


def start() -> Iterator:
    """A fresh Chromium (its own profile folder), quit after use."""
    browser, driver = find()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS:
        options.add_argument(flag)
    with tempfile.TemporaryDirectory(prefix="bench-chromium-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        d = webdriver.Chrome(options=options, service=Service(driver))
        try:
            yield d
        finally:
            d.quit()


def open_page(driver, path: Path) -> list[str]:
    """Open ``path`` from disk; the console's errors (SEVERE entries) it logged while loading."""
    driver.get(Path(path).resolve().as_uri())
    driver.execute_script("return document.readyState")
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def not_blank(driver, min_ink: float = 0.03) -> float:
    """The share of the screenshot's pixels that are not the background (asserted above ``min_ink``)."""
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("L"), float)
    ink = float((np.abs(img - np.median(img)) > 16).mean())
    assert ink > min_ink, f"the page looks blank: {ink:.1%} of its pixels differ from the background"
    return ink
