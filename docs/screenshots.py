"""`make screenshots`: the documentation's pictures, taken from a real search.

Runs a small IMDB search into a temporary store, starts the MLflow UI (`pipeline ui`) and
optuna-dashboard (`pipeline dashboard`) on 127.0.0.1, and photographs them in headless
Chromium driven by Selenium (Debian's `chromium` and `chromium-driver`; Selenium's own
browser download cannot reach these machines):

- runs-table.png: the study's runs, the parent run expanded, val_accuracy and
  test_accuracy as columns;
- learning-curves.png: one trial's per-epoch curves;
- registered-model.png: the registered model and its `champion` alias;
- dashboard-history.png: optuna-dashboard's history, the objective named val_accuracy.

Writes docs/images/*.png. Usage: `make screenshots` (PIPELINE_DATA_DIR must hold IMDB).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
N_TRIALS = 8
SIZE = (1400, 1000)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="screenshots-"))
    env = os.environ | {
        "MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db",
        "PIPELINE_STORAGE": f"sqlite:///{work}/optuna.db",
    }
    servers: list[subprocess.Popen] = []
    try:
        search(env)
        ui, dashboard = free_port(), free_port()
        servers.append(serve(["ui", "--port", str(ui)], env, work / "ui.log", ui))
        servers.append(
            serve(["dashboard", "--port", str(dashboard)], env, work / "dash.log", dashboard)
        )
        browser = open_browser()
        try:
            IMAGES.mkdir(parents=True, exist_ok=True)
            runs_table(browser, f"http://127.0.0.1:{ui}")
            learning_curves(browser, f"http://127.0.0.1:{ui}", env)
            registered_model(browser, f"http://127.0.0.1:{ui}")
            history(browser, f"http://127.0.0.1:{dashboard}")
        finally:
            browser.quit()
    finally:
        for server in servers:
            server.terminate()
            server.wait(30)
        shutil.rmtree(work, ignore_errors=True)
    for path in sorted(IMAGES.glob("*.png")):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KiB")


def search(env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "pipeline", "search", "imdb", "--n-trials", str(N_TRIALS)]
    subprocess.run([*command, "--seed", "0"], env=env, cwd=ROOT, check=True)


def serve(args: list[str], env, log: Path, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "pipeline", *args]
    with open(log, "w") as out:
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=out)
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{args[0]} did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={SIZE[0]},{SIZE[1]}")
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=service)


def wait_for(browser, xpath: str, seconds: float = 60):
    return WebDriverWait(browser, seconds).until(
        ready.presence_of_element_located((By.XPATH, xpath))
    )


def settle(seconds: float = 2.0) -> None:
    time.sleep(seconds)  # charts animate in after their data arrives


def shoot(browser, name: str) -> None:
    browser.save_screenshot(str(IMAGES / name))
    print("took", name)


# --- the pictures -------------------------------------------------------------------------


def runs_table(browser, ui: str) -> None:
    """The study's runs: the parent expanded, its trials with val_accuracy and
    test_accuracy as columns (MLflow's assistant panel closed)."""
    browser.get(f"{ui}/#/experiments/1?workflowType=machine_learning")
    wait_for(browser, "//span[text()='imdb-search']")
    settle()
    close_assistant(browser)
    click(browser, 'button[data-component-id$="runnamecellrenderer.tsx_46"]')  # expand
    browser.find_elements(By.CSS_SELECTOR, 'button[data-testid="column-selection-dropdown"]')[
        0
    ].click()
    settle(1)
    for column in ("Dataset", "Source", "val_accuracy", "test_accuracy"):
        browser.find_element(By.XPATH, f"//div[@role='dialog']//*[text()='{column}']").click()
        settle(0.5)
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    settle()
    shoot(browser, "runs-table.png")


def learning_curves(browser, ui: str, env) -> None:
    """The best trial's per-epoch curves (its run's model metrics)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs(
        ["1"], "tags.trial_number != ''", order_by=["metrics.val_accuracy DESC"]
    )
    run = runs[0]
    browser.get(f"{ui}/#/experiments/1/runs/{run.info.run_id}/model-metrics")
    wait_for(browser, "//*[contains(text(), 'val_accuracy')]")
    close_assistant(browser)
    click(browser, 'button[aria-label="Toggle sidebar"]')
    search = browser.find_element(By.XPATH, "//input[@placeholder='Search metric charts']")
    search.send_keys("^(val_)?(accuracy|loss)$")  # MLflow reads it as a regular expression
    settle(4)
    shoot(browser, "learning-curves.png")


def registered_model(browser, ui: str) -> None:
    """The registered model's versions, the champion alias on the best."""
    browser.get(f"{ui}/#/models/imdb")
    wait_for(browser, "//a[contains(., 'Version 1')]")
    settle()
    close_assistant(browser)
    shoot(browser, "registered-model.png")


def history(browser, dashboard: str) -> None:
    """optuna-dashboard's optimization history, the objective named val_accuracy."""
    browser.get(f"{dashboard}/dashboard/studies/1")
    wait_for(browser, "//*[contains(text(), 'val_accuracy')]")
    settle(4)
    shoot(browser, "dashboard-history.png")


def close_assistant(browser) -> None:
    """MLflow 3.17 opens its chat assistant beside the page in a new browser."""
    found = browser.find_elements(
        By.CSS_SELECTOR, '[data-component-id="mlflow.assistant.chat_panel.close"]'
    )
    if found:
        found[0].click()
        settle(1)


def click(browser, css: str) -> None:
    browser.find_element(By.CSS_SELECTOR, css).click()
    settle(1)


if __name__ == "__main__":
    main()
