"""The playground in a real browser: Chromium (Debian `chromium` + `chromium-driver`) driven by Selenium
against `python -m app` running as its own process, exactly as the README starts it.

Skipped, with the reason, when Chromium or Selenium is missing (AISTARTER_REQUIRE_SERVICES=1 makes that a
failure). Set PLAYGROUND_SCREENSHOT=path.png to keep a screenshot of the finished page.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PROJECT, _unavailable
from tests.servers import free_port

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, str | None]]:
    """`python -m app` on a fresh SQLite database; yields its URL and the first API key it printed."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
           "FAKE_TOKEN_DELAY_MS": "60", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
{%- if cookiecutter.vector_store == 'pgvector' %}
    env["PGVECTOR_URL"] = request.getfixturevalue("pg_url")
{%- endif %}
    log = (tmp_path / "server.log").open("w+")
    process = subprocess.Popen([sys.executable, "-m", "app"], cwd=PROJECT, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"`python -m app` did not start:\n{log.read()[-2000:]}")
            time.sleep(0.2)
        log.seek(0)
        printed = re.search(r"bearer token:\s+(\S+)", log.read())
        yield url, printed.group(1) if printed else None
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def browser() -> Iterator[object]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        _unavailable("the browser test needs Chromium and its driver: apt-get install chromium chromium-driver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("the browser test needs selenium (pip install -e '.[dev]')")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1400"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_chat_provenance_and_feedback_in_a_browser(server: tuple[str, str | None], browser: object,
                                                   tmp_path: Path) -> None:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    url, key = server
    headers = {"Authorization": f"Bearer {key}"} if key else {}
{%- if cookiecutter.auth == 'api_key' %}
    assert key, "`python -m app` prints a first API key on an empty database"
{%- endif %}
{%- if cookiecutter.vector_store != 'none' %}
    document = httpx.post(f"{url}/v1/documents", headers=headers, timeout=30, json={
        "id": "refund-policy", "source": "refunds.md",
        "text": "Refund policy: customers may return any playground widget within 30 days for a full refund."})
    assert document.status_code in (200, 201), document.text
{%- endif %}
    driver = browser
    # The page re-renders a provenance panel when its record changes (feedback saved): an element found just
    # before that is stale, so a wait polls again instead of failing.
    wait = WebDriverWait(driver, 20, poll_frequency=0.05,  # type: ignore[arg-type]
                         ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))
    driver.get(f"{url}/playground")  # type: ignore[attr-defined]
    find = driver.find_element  # type: ignore[attr-defined]
    if key:
        find(By.ID, "api-key").send_keys(key)
        find(By.CSS_SELECTOR, "#key-form button").click()
    wait.until(lambda d: d.find_element(By.ID, "key-status").text == "connected")
    assert key is None or key not in driver.current_url  # type: ignore[attr-defined]
{%- if cookiecutter.use_case == 'agents' %}
    # The picker starts on the first agent; plain chat first, the agent after.
    wait.until(lambda d: Select(d.find_element(By.ID, "agent")).first_selected_option.get_attribute("value"))
    Select(find(By.ID, "agent")).select_by_value("")
{%- endif %}
    Select(find(By.ID, "prompt-version")).select_by_index(1)  # the first explicit version
    chosen = Select(find(By.ID, "prompt-version")).first_selected_option.get_attribute("value")
    Select(find(By.ID, "model")).select_by_value("fake-1")

    find(By.ID, "message").send_keys("What is the refund policy for a widget?\n")
    answer = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".turn.assistant .answer"))
    # Streaming: part of the answer is on the page before the turn is complete.
    partial = wait.until(lambda d: answer.text if answer.text and
                         d.find_element(By.CSS_SELECTOR, ".turn.assistant").get_attribute("data-done") is None
                         else None)
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".turn.assistant").get_attribute("data-done") == "true")
    final = answer.text
    assert final.startswith("[fake provider] You said: What is the refund policy") and len(final) > len(partial)

    panel = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".provenance[data-interaction-id]"))

    def shown(name: str) -> str:
        return wait.until(lambda d: (panel.find_element(By.CSS_SELECTOR, f'[data-field="{name}"]').text,))[0]

    assert shown("prompt_version") == chosen
    assert len(shown("prompt_sha256")) == 64
    assert shown("requested_model") == "fake-1" and shown("model") == "fake-1" and shown("provider") == "fake"
    assert re.fullmatch(r"\d+ / \d+", shown("tokens"))
    assert shown("ttft_ms").endswith(" ms") and shown("latency_ms").endswith(" ms")
{%- if cookiecutter.vector_store != 'none' %}
    assert shown("documents") == "refund-policy"
    chunk = panel.find_element(By.CSS_SELECTOR, '.chunk[data-document-id="refund-policy"]')
{%- if cookiecutter.trace_content == 'metadata' %}
    assert chunk.text.endswith("(content not kept)")  # TRACE_CONTENT=metadata: ids, never text
{%- else %}
    assert "30 days" in chunk.text
{%- endif %}
{%- endif %}
    interaction = panel.get_attribute("data-interaction-id")

    find(By.CSS_SELECTOR, '.feedback button[data-rating="down"]').click()
    find(By.CSS_SELECTOR, ".feedback-comment").send_keys("should quote the 30-day window")
    find(By.CSS_SELECTOR, ".feedback-submit").click()
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".feedback-status").text == "saved")
    wait.until(lambda d: "down" in d.find_element(By.CSS_SELECTOR, '[data-field="feedback"]').text)

    record = httpx.get(f"{url}/v1/interactions/{interaction}", headers=headers).json()
    # The comment is kept like the answer it is about: not at all under TRACE_CONTENT=metadata.
    comment = {% if cookiecutter.trace_content == 'metadata' %}None{% else %}"should quote the 30-day window"{% endif %}
    assert [(f["rating"], f["comment"]) for f in record["feedback"]] == [("down", comment)]
    assert record["prompt"]["version"] == chosen and record["stream"] is True
{%- if cookiecutter.use_case == 'agents' %}

    # The agent picker: each tool step shows while the run goes on, then the run record under the answer.
    Select(find(By.ID, "agent")).select_by_value("assistant")
    assert not find(By.ID, "model").is_enabled()  # the agent brings its own model (agents.json)
    find(By.ID, "reset").click()
    find(By.ID, "message").send_keys("calculate 6*7 and list_files\n")
    turn = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".turn.assistant"))
    step = wait.until(lambda d: turn.find_elements(By.CSS_SELECTOR, '.step[data-tool="calculate"]'))[0]
    assert turn.get_attribute("data-done") is None and not turn.find_element(By.CSS_SELECTOR, ".answer").text
    assert step.text.startswith("tool step 1: calculate(")
    wait.until(lambda d: turn.get_attribute("data-done") == "true")
    assert "42" in turn.find_element(By.CSS_SELECTOR, ".answer").text
    run = turn.find_element(By.CSS_SELECTOR, ".run[data-run-id]")
    calls = {c.get_attribute("data-tool"): c.text for c in run.find_elements(By.CSS_SELECTOR, ".tool-call")}
    assert set(calls) == {"calculate", "list_files"} and "MCP files" in calls["list_files"]
{%- if cookiecutter.trace_content == 'metadata' %}
    assert "result: (not kept: trace_content=metadata)" in calls["calculate"]
{%- else %}
    assert "result: 42" in calls["calculate"] and "extending.md" in calls["list_files"]
{%- endif %}
    record = httpx.get(f"{url}/v1/agents/runs/{run.get_attribute('data-run-id')}", headers=headers).json()
    assert record["status"] == "succeeded" and record["tool_calls"] == 2
    panel = wait.until(lambda d: turn.find_element(By.CSS_SELECTOR, ".provenance[data-interaction-id]"))
    last_call = [s for s in record["steps"] if s["type"] == "model"][-1]
    assert panel.get_attribute("data-interaction-id") == last_call["interaction_id"]
{%- endif %}
    screenshot = os.environ.get("PLAYGROUND_SCREENSHOT") or str(tmp_path / "playground.png")
    assert driver.save_screenshot(screenshot)  # type: ignore[attr-defined]
