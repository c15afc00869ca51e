"""The chat page of `make demo` (GET /demo of langfoundry serve) in a real headless Chromium: type a question, press
Ask, and see the tiny model's answer appear, the same answer the API gives for the same question.

The server is the serve app under uvicorn on 127.0.0.1 (tests/local_server.py) with a tiny scratch model; the
browser is Debian's chromium with its chromedriver, driven by Selenium as tests/test_review_browser.py drives it
(no Selenium Manager, nothing downloaded). A screenshot goes to the test's folder and to $LANGFOUNDRY_ARTIFACTS.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from local_server import serving
from test_review_browser import CHROMIUM, browser, keep  # noqa: F401  (browser is a fixture)
from tiny_models import build_tiny_base, write_examples

from langfoundry.serve.app import ServeSettings, create_app
from langfoundry.serve.generation import ResolvedModel, ServedModel, folder_version
from langfoundry.serve.store import Store

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} is not installed "
                                "(apt-get install chromium chromium-driver)")
QUESTION = "Terjemahkan dari bahasa Banyumasan ke bahasa Indonesia:\nabot"


@pytest.fixture
def demo_server(tmp_path: Path):
    train, _ = write_examples(tmp_path)
    build_tiny_base(tmp_path / "model", train)  # 40 steps: enough to answer with words
    model = ServedModel.load(ResolvedModel(folder_version(tmp_path / "model"), tmp_path / "model"), "serve.champion")
    store = Store(f"sqlite:///{tmp_path / 'serve.db'}")
    app = create_app({"champion": model}, store, ServeSettings(mode="champion_only", max_new_tokens=32))
    try:
        with serving(app) as url:
            yield url, model
    finally:
        store.close()


def test_the_demo_page_is_local_html_and_script(demo_server) -> None:
    url, _ = demo_server
    page = httpx.get(url + "/demo", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/demo.js">' in page.text and "http" not in page.text.split("<body>")[1]
    script = httpx.get(url + "/static/demo.js", timeout=10)
    assert script.status_code == 200 and "/v1/chat/completions" in script.text


def test_a_question_typed_in_chromium_gets_the_models_answer(demo_server, browser, tmp_path: Path) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, model = demo_server
    expected = httpx.post(url + "/v1/chat/completions", timeout=60, json={
        "max_tokens": 32, "messages": [{"role": "user", "content": QUESTION}]}).json()["choices"][0]["message"]["content"]

    browser.get(url + "/demo")
    WebDriverWait(browser, 20).until(lambda driver: model.version in driver.find_element(By.ID, "model").text)
    assert browser.execute_script("return getComputedStyle(document.querySelector('.bar')).display") == "flex"
    box = browser.find_element(By.ID, "prompt")
    box.clear()
    box.send_keys(QUESTION)
    browser.find_element(By.ID, "send").click()

    answer = WebDriverWait(browser, 60).until(
        lambda driver: (driver.find_elements(By.CSS_SELECTOR, ".turn.answer")
                        or driver.find_elements(By.CSS_SELECTOR, ".turn.failed") or [None])[0])
    assert "failed" not in answer.get_attribute("class"), answer.text
    assert answer.get_attribute("data-answer") == expected  # greedy: the page shows what the API answers
    assert answer.find_element(By.CSS_SELECTOR, ".text").text == (expected.strip() or "(an empty answer)")
    assert model.version in answer.find_element(By.CSS_SELECTOR, ".meta").text
    turns = browser.find_elements(By.CSS_SELECTOR, ".turn")
    assert turns[0].text == QUESTION and len(turns) == 2
    keep(browser, tmp_path, "demo-page.png")
