"""Browser-test fixtures: headless Debian Chromium driven by Playwright, against uvicorn servers.

The tests skip when Playwright or /usr/bin/chromium is missing, unless TASKFLOW_REQUIRE_SERVICES=1 (CI),
where a missing browser fails them. Set TASKFLOW_SCREENSHOTS=<dir> to save screenshots of the main views;
those of the Dead letters, Audit, Schedules and Queues tabs come from `scripts/doc_screenshots.py` (a richer
history, a waiting one-off, a queue with rejections).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.server import uvicorn_server
from tests.conftest import services_required

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _unavailable(reason: str) -> None:
    if services_required():
        pytest.fail(f"browser tests cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per module.

    Not per session: Playwright's sync API keeps an asyncio loop marked as running in the main thread
    while it is open, and every async test collected after the browser tests would then fail to start.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright; never `playwright install`)")
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies, no localStorage) and page, with page errors collected."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The test app without auth; yields its base URL."""
    with uvicorn_server() as (base, _):
        yield base


@pytest.fixture(scope="module")
def auth_server() -> Iterator[str]:
    """The test app with auth (admin / secret)."""
    with uvicorn_server(TASKFLOW_TEST_AUTH="1", TASKFLOW_TEST_SECRET="browser-tests") as (base, _):
        yield base


def screenshot(page: Any, name: str) -> None:
    """Save a screenshot to $TASKFLOW_SCREENSHOTS/<name>.png when that variable is set."""
    folder = os.environ.get("TASKFLOW_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))
