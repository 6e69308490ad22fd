"""A real browser for the web view's tests: Debian's chromium driven by its chromedriver
through selenium, headless, with a fresh profile and no background networking.
``scripts/install_browser.sh`` installs the two packages when they are missing (as root); where
that cannot be done the tests are skipped with the reason."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = ROOT / "scripts" / "install_browser.sh"
ARTIFACTS = ROOT / "build" / "artifacts"
#: The flags this machine's chromium needs (no sandbox as root, no GPU, nothing phoning home).
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
]


def ensure_browser() -> tuple[str, str]:
    """Paths of chromium and chromedriver, installing them first if needed; skips the test
    with the installer's reason when they cannot be had."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed (make install pins it)")
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        done = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=900
        )
        if done.returncode != 0:
            reason = done.stderr.strip().splitlines()[-1:] or ["unknown error"]
            pytest.skip(f"no browser: {reason[0]}")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("no browser: chromium or chromedriver still missing after the install")
    return chromium, driver


@contextmanager
def chromium_session() -> Iterator[object]:
    """A headless chromium WebDriver with a new, empty profile (removed afterwards)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = ensure_browser()
    profile = tempfile.mkdtemp(prefix="noosphere-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver: object, name: str) -> Path:
    """Save the whole page as build/artifacts/<name>.png (the folder is gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    height = driver.execute_script("return document.documentElement.scrollHeight")  # type: ignore[attr-defined]
    driver.set_window_size(1400, max(900, min(int(height) + 40, 4000)))  # type: ignore[attr-defined]
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    return path
