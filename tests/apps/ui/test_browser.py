"""A real headless Chromium drives the UI: champion, prediction form, navigation, screenshots.

Needs Debian's ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``,
``/usr/bin/chromedriver``); skipped with the install line when they are missing. Screenshots
go to ``$LAKEHOUSE_TEST_ARTIFACTS`` (default ``build/test-artifacts``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.apps.ui.conftest import UiStack

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
)

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
    reason="needs /usr/bin/chromium and /usr/bin/chromedriver: "
    "apt-get install -y chromium chromium-driver",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = Path(tempfile.mkdtemp(prefix="lakehouse-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # both paths given: Selenium Manager (which would go online) is never needed
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_champion_prediction_in_the_browser(
    browser: Any, ui_stack: UiStack, artifacts_dir: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)
    browser.get(ui_stack.ui_url + "/")
    champion_row = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "tr.champion")))
    champion = champion_row.get_attribute("data-version")
    assert champion == "1"
    assert "@champion" in champion_row.text
    browser.save_screenshot(str(artifacts_dir / "ui-models.png"))

    browser.find_element(By.LINK_TEXT, "Predict").click()
    form = wait.until(ec.presence_of_element_located((By.ID, "predict-form")))
    registry = ui_stack.registry
    record = registry.records()[-1]  # a customer the champion predicts to churn
    for name, value in record.items():
        field = form.find_element(By.ID, f"f-{name}")
        field.clear()
        if value is not None:
            field.send_keys(value if isinstance(value, str) else repr(value))
    form.find_element(By.ID, "submit").click()
    prediction = wait.until(ec.presence_of_element_located((By.ID, "prediction")))

    api = httpx.post(f"{ui_stack.serving_url}/predict", json={"record": record}, timeout=30)
    assert api.status_code == 200, api.text
    expected = api.json()
    assert prediction.text == str(expected["predictions"][0]["prediction"]) == "1"
    probability = browser.find_element(By.ID, "probability").text
    assert probability == f"{expected['predictions'][0]['probability']:.4f}"
    assert browser.find_element(By.ID, "model-version").text == f"v{champion}"
    assert expected["model_version"] == champion
    browser.save_screenshot(str(artifacts_dir / "ui-predict.png"))

    browser.find_element(By.LINK_TEXT, "Drift").click()
    chart = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".chart.alert svg")))
    assert chart.size["width"] > 300  # the inline SVG is laid out, not collapsed
    browser.save_screenshot(str(artifacts_dir / "ui-drift.png"))

    browser.find_element(By.LINK_TEXT, "Lineage").click()
    picture = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#lineage-picture svg")))
    assert picture.size["height"] > 100
    browser.save_screenshot(str(artifacts_dir / "ui-lineage.png"))
    assert (artifacts_dir / "ui-predict.png").stat().st_size > 10_000
