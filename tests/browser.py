"""Headless Chromium, driven by Selenium, for the tests and `make screenshots`: Debian's
`chromium` and `chromium-driver` (Selenium's own browser download cannot reach every
machine), and an MLflow UI started by `pipeline ui`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

SIZE = (1400, 1000)


def available() -> str | None:
    """Why a browser cannot be driven here, or None when it can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    missing = [p for p in ("chromium", "chromedriver") if shutil.which(p) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (apt: chromium chromium-driver)"
    return None


def open_browser(size: tuple[int, int] = SIZE, scale: float = 1.0):
    """Headless Chromium, its window `size` points; `scale` > 1 draws more pixels per
    point (readable pictures)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={size[0]},{size[1]}")
    options.add_argument(f"--force-device-scale-factor={scale}")
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=service)


def serve(args: list[str], env: dict[str, str], log: Path, port: int) -> subprocess.Popen:
    """`python -m pipeline ARGS` (ui, dashboard), once it answers on `port`."""
    command = [sys.executable, "-m", "pipeline", *args]
    with open(log, "w") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=out, start_new_session=True)
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc)
                raise RuntimeError(f"{args[0]} did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.5)


def stop(proc: subprocess.Popen) -> None:
    """The server and the workers it started (its process group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        proc.wait(30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(browser, xpath: str, seconds: float = 60):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, seconds).until(
        ready.presence_of_element_located((By.XPATH, xpath))
    )


def page_text(browser) -> str:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.TAG_NAME, "body").text
