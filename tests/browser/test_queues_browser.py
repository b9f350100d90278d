"""The Queues tab in headless Chromium: depth, running, limits and rejected counts of each queue, an inline
resize that takes effect at once, and no resize control for a read-only user."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.browser.test_access_browser import sign_in
from tests.browser.test_dashboard_browser import open_dashboard

pytestmark = pytest.mark.slow


def queued(base: str, seconds: str = "30") -> httpx.Response:
    return httpx.post(f"{base}/run-queued", params={"seconds": seconds})


def cell(page: Any, css: str) -> Any:
    return page.locator(f'#queues tr[data-queue="mail"] {css}')


def test_queues_tab_shows_counts_and_resizes_inline(page: Any, server: str) -> None:
    """One running, three waiting, the fifth refused with 429: the tab shows it; raising the concurrency
    to 3 in place starts two waiting tasks; the PATCH is audited."""
    answers = [queued(server) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    assert answers[-1].headers["retry-after"] == "1"
    open_dashboard(page, server)
    page.locator('nav [data-tab="queues"]').click()
    cell(page, ".queue-pending").get_by_text("3", exact=True).wait_for()
    assert cell(page, ".queue-running").inner_text() == "1"
    assert cell(page, ".queue-rejected").inner_text() == "1"
    assert cell(page, ".queue-max_size").input_value() == "3"
    cell(page, ".queue-concurrency").fill("3")
    cell(page, ".queue-save").click()
    page.get_by_text("Queue mail updated").wait_for()
    cell(page, ".queue-running").get_by_text("3", exact=True).wait_for()
    assert cell(page, ".queue-pending").inner_text() == "1"
    cell(page, ".queue-concurrency").fill("0")
    cell(page, ".queue-save").click()
    page.get_by_text("must be a whole number").wait_for()
    stats = httpx.get(f"{server}/tasks/queues").json()
    assert stats[0]["concurrency"] == 3 and stats[0]["max_size"] == 3
    audit = httpx.get(f"{server}/tasks/audit").json()
    assert audit[0]["action"] == "update_queue" and audit[0]["target"] == "mail"
    assert page.errors == []


def test_read_only_user_sees_queues_without_resize(page: Any, auth_server: str) -> None:
    """A read-only user sees the limits as text and no input or Save button."""
    assert queued(auth_server, "0.01").status_code == 200
    sign_in(page, auth_server, "viewer")
    page.locator('nav [data-tab="queues"]').click()
    page.locator('#queues tr[data-queue="mail"]').wait_for()
    assert cell(page, ".queue-value").first.inner_text() == "1"
    assert cell(page, ".queue-concurrency").is_hidden()
    assert cell(page, ".queue-save").is_hidden()
    assert page.errors == []
