"""The review page in a real headless Chromium: choose B, type a correction, submit, and find it stored.

The server is `python -m langfoundry.serve.review` under uvicorn on 127.0.0.1; the browser is Debian's
chromium with its chromedriver (packages chromium and chromium-driver), driven by Selenium without
Selenium Manager, so nothing is downloaded. Screenshots go to the test's folder and, when
LANGFOUNDRY_ARTIFACTS is set, to that folder too.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from test_review import write_params, write_project

from langfoundry.serve.judgments import judgment_rows, open_database

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} is not installed "
                                "(apt-get install chromium chromium-driver)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path):
    """The review server on a free port over a small project; yields (url, params, database URL)."""
    params = write_project(tmp_path, pairs=3)
    database = f"sqlite:///{tmp_path / 'serve.db'}"
    url = f"http://127.0.0.1:{free_port()}"
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "langfoundry.serve.review", "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1],
         "--params", str(write_params(params)), "--database", database, "--reviewer", "browser"],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the review server did not answer within 30 s"
            time.sleep(0.1)
        yield url, params, database
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def browser(tmp_path: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1200,860", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)  # a driver path: no Selenium Manager
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def keep(driver, tmp_path: Path, name: str) -> Path:
    """A screenshot in the test's folder, copied to $LANGFOUNDRY_ARTIFACTS when set."""
    shot = tmp_path / name
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 1000
    if os.environ.get("LANGFOUNDRY_ARTIFACTS"):
        folder = Path(os.environ["LANGFOUNDRY_ARTIFACTS"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, folder / name)
    return shot


def test_a_reviewer_picks_b_with_a_correction_in_chromium(server, browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    url, params, database = server
    browser.get(url + "/")
    assert browser.find_element(By.ID, "progress").text.startswith("0 of 3 judged")
    stylesheet = browser.execute_script("return getComputedStyle(document.querySelector('.answers')).display")
    assert stylesheet == "grid"  # the local stylesheet loaded
    answer_b = browser.find_element(By.CSS_SELECTOR, "#answer-B .text").text
    prompt = browser.find_element(By.CSS_SELECTOR, ".prompt .text").text
    assert answer_b.split("-")[0] in ("cand", "ref") and "kata-" in prompt

    browser.find_element(By.ID, "choice-B").click()
    browser.find_element(By.ID, "correction").send_keys("arti: tembung sing bener")
    keep(browser, tmp_path, "review-page.png")
    page = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.ID, "submit").click()
    # click() can return before the form's navigation starts (a busy machine): wait for the old page to go and
    # the redirected one to show, instead of reading the page that was just submitted
    wait = WebDriverWait(browser, 30)
    wait.until(expected_conditions.staleness_of(page))
    saved = wait.until(expected_conditions.presence_of_element_located((By.ID, "saved")))

    assert saved.text == "Judgment saved."
    assert browser.find_element(By.ID, "progress").text.startswith("1 of 3 judged")
    assert browser.find_element(By.CSS_SELECTOR, ".prompt .text").text != prompt  # the next pair
    keep(browser, tmp_path, "review-next.png")

    [row] = judgment_rows(open_database(database))
    expected = "candidate" if answer_b.startswith("cand-") else "reference"
    assert (row["reviewer"], row["choice"], row["correction"]) == ("browser", expected, "arti: tembung sing bener")
    assert row["candidate_position"] == ("B" if expected == "candidate" else "A")
    preference = json.loads(params.paths.metric("preference").read_text(encoding="utf-8"))
    assert preference["judgments"] == 1 and preference["candidate_wins" if expected == "candidate" else "reference_wins"] == 1
