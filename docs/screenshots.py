"""`make screenshots`: the pictures of "Compare trials in the MLflow UI" (docs/mlflow-ui.md),
taken by doing what that page tells the reader to do, step by step, and nothing else.

Runs a small IMDB search into a temporary store, starts the MLflow UI (`pipeline ui`) and
optuna-dashboard (`pipeline dashboard`) on 127.0.0.1, and photographs them in headless
Chromium driven by Selenium (Debian's `chromium` and `chromium-driver`):

1. runs-table.png: the search's printed "MLflow UI" link, opened;
2. trial-overview.png: the best trial, opened by a click on its name;
3. learning-curves.png: its "Model metrics" tab, the charts searched for
   `^(val_)?(accuracy|loss)$`;
4. compare-runs.png: the printed "Compare the top" link, opened, the metric chosen;
5. registered-model.png: "Model registry" in the sidebar, then the model's name;
6. dashboard-history.png: optuna-dashboard's study page.

Writes docs/images/*.png. Usage: `make screenshots` (PIPELINE_DATA_DIR must hold IMDB).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests import browser  # noqa: E402  (the browser the tests drive)

IMAGES = ROOT / "docs" / "images"
N_TRIALS = 8


def main() -> None:
    from selenium.webdriver.common.by import By

    work = Path(tempfile.mkdtemp(prefix="screenshots-"))
    env = os.environ | {
        "MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db",
        "PIPELINE_STORAGE": f"sqlite:///{work}/optuna.db",
    }
    servers: list[subprocess.Popen] = []
    try:
        printed = search(env)
        ui, dashboard = browser.free_port(), browser.free_port()
        servers.append(browser.serve(["ui", "--port", str(ui)], env, work / "ui.log", ui))
        args = ["dashboard", "--port", str(dashboard)]
        servers.append(browser.serve(args, env, work / "dash.log", dashboard))
        links = {k: v.replace("127.0.0.1:5000", f"127.0.0.1:{ui}") for k, v in printed.items()}
        chrome = browser.open_browser(size=(1400, 860), scale=1.25)
        try:
            IMAGES.mkdir(parents=True, exist_ok=True)
            runs_table(chrome, links["runs"])
            best_trial(chrome, By)
            learning_curves(chrome, By)
            compare_runs(chrome, links["compare"], By)
            registered_model(chrome, By)
            history(chrome, f"http://127.0.0.1:{dashboard}")
        except Exception:
            chrome.save_screenshot(str(work.parent / "screenshots-failed.png"))
            print(f"the page when it failed: {work.parent / 'screenshots-failed.png'}")
            raise
        finally:
            chrome.quit()
    finally:
        for server in servers:
            browser.stop(server)
        shutil.rmtree(work, ignore_errors=True)
    for path in sorted(IMAGES.glob("*.png")):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KiB")


def search(env: dict[str, str]) -> dict[str, str]:
    """The search; the links its closing lines print."""
    command = [sys.executable, "-m", "pipeline", "search", "imdb", "--n-trials", str(N_TRIALS)]
    done = subprocess.run(
        [*command, "--seed", "0"], env=env, cwd=ROOT, check=True, capture_output=True, text=True
    )
    print(done.stdout)
    return {
        "runs": re.search(r"MLflow UI: make ui, then (\S+)", done.stdout).group(1),
        "compare": re.search(r"Compare the top \d+: (\S+)", done.stdout).group(1),
    }


def settle(seconds: float = 2.0) -> None:
    time.sleep(seconds)  # charts animate in after their data arrives


def shoot(chrome, name: str) -> None:
    chrome.save_screenshot(str(IMAGES / name))
    print("took", name)


# --- the walkthrough's steps ----------------------------------------------------------------


def runs_table(chrome, link: str) -> None:
    """Step 1: open the printed "MLflow UI" link."""
    chrome.get(link)
    browser.wait_for(chrome, "//*[normalize-space(.)='COMPLETE']")
    settle()
    shoot(chrome, "runs-table.png")


def best_trial(chrome, By) -> None:
    """Step 2: click the first trial's name (the best: the table is sorted by the metric)."""
    chrome.find_element(By.XPATH, "(//a[starts-with(normalize-space(.), 'trial-')])[1]").click()
    browser.wait_for(chrome, "//*[normalize-space(.)='Model metrics']")
    settle()
    shoot(chrome, "trial-overview.png")


def learning_curves(chrome, By) -> None:
    """Step 3: the "Model metrics" tab, its charts searched for the learning curves."""
    chrome.find_element(By.XPATH, "//*[normalize-space(.)='Model metrics']").click()
    search = browser.wait_for(chrome, "//input[@placeholder='Search metric charts']")
    search.send_keys("^(val_)?(accuracy|loss)$")  # MLflow reads it as a regular expression
    settle(4)
    shoot(chrome, "learning-curves.png")


def compare_runs(chrome, link: str, By) -> None:
    """Step 4: open the printed "Compare the top" link; add final_val_accuracy to Metrics."""
    from selenium.webdriver.common.keys import Keys

    chrome.get(link)
    browser.wait_for(chrome, "//*[normalize-space(.)='Parallel Coordinates Plot']")
    settle()
    field = chrome.find_elements(By.CSS_SELECTOR, ".du-bois-light-select-selection-search-input")
    metrics = field[-1] if field else chrome.switch_to.active_element
    metrics.click()
    metrics.send_keys("final_val_accuracy")
    settle(1)
    chrome.find_element(By.XPATH, "//*[@title='final_val_accuracy']").click()
    metrics.send_keys(Keys.ESCAPE)
    settle(3)
    shoot(chrome, "compare-runs.png")


def registered_model(chrome, By) -> None:
    """Step 5: "Model registry" in the sidebar, then the model's name."""
    chrome.find_element(By.XPATH, "//a[normalize-space(.)='Model registry']").click()
    browser.wait_for(
        chrome, "//a[normalize-space(.)='imdb' and contains(@href, 'models/')]"
    ).click()
    browser.wait_for(chrome, "//a[contains(., 'Version 1')]")
    settle()
    shoot(chrome, "registered-model.png")


def history(chrome, dashboard: str) -> None:
    """optuna-dashboard's optimization history, the objective named val_accuracy."""
    chrome.get(f"{dashboard}/dashboard/studies/1")
    browser.wait_for(chrome, "//*[contains(text(), 'val_accuracy')]")
    settle(4)
    shoot(chrome, "dashboard-history.png")


if __name__ == "__main__":
    main()
