"""What a user sees in the MLflow UI after a search, in headless Chromium: the printed link
opens the trial runs in MLflow's model-training view (not its GenAI pages), best first,
with the validation metric, the test metric and the trial state as columns; a trial opened
from the table stays in that view."""

from __future__ import annotations

import os
import re

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from tests import browser
from tests.conftest import space_file

# CI sets PIPELINE_REQUIRE_BROWSER=1: there a missing browser fails the test, not skips it
_MISSING = browser.available()
_SKIP = _MISSING is not None and not os.environ.get("PIPELINE_REQUIRE_BROWSER")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(_SKIP, reason=str(_MISSING))]
GENAI_ONLY = ("Prompts", "Judges", "Agent versions", "Evaluations")  # its sidebar, breadcrumb


def test_the_printed_link_opens_the_trials_in_the_model_training_view(tiny_data, stores, tmp_path):
    from selenium.webdriver.common.by import By

    args = ["search", "imdb", "--space", str(space_file(tmp_path)), "--n-trials", "3"]
    result = CliRunner().invoke(app, [*args, "--pruner", "none"])
    assert result.exit_code == 0, result.output
    link = re.search(r"MLflow UI: make ui, then (\S+)", result.output).group(1)
    port = browser.free_port()
    link = link.replace("127.0.0.1:5000", f"127.0.0.1:{port}")
    ui = browser.serve(["ui", "--port", str(port)], dict(os.environ), tmp_path / "ui.log", port)
    chrome = browser.open_browser()
    try:
        chrome.get(link)
        browser.wait_for(chrome, "//*[normalize-space(.)='trial-2']")
        browser.wait_for(chrome, "//*[normalize-space(.)='COMPLETE']")
        chrome.save_screenshot(str(tmp_path / "runs.png"))
        text = browser.page_text(chrome)
        for shown in ("Model training", "Model registry", "final_val_accuracy", "test_accuracy"):
            assert shown in text
        assert "trial_state" in text and text.count("COMPLETE") == 3
        assert not [word for word in GENAI_ONLY if word in text]
        names = [e.text for e in chrome.find_elements(By.XPATH, "//a[starts-with(., 'trial-')]")]
        assert sorted(names) == ["trial-0", "trial-1", "trial-2"]  # flat, none collapsed
        chrome.find_element(By.XPATH, f"//a[normalize-space(.)='{names[0]}']").click()
        browser.wait_for(chrome, "//*[normalize-space(.)='Model metrics']")
        text = browser.page_text(chrome)
        assert "Model registry" in text and not [w for w in GENAI_ONLY if w in text]
    finally:
        chrome.quit()
        browser.stop(ui)
