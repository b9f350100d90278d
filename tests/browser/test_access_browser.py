"""The dashboard's access features in headless Chromium: the Audit view, read-only users, and a signed-out
session cookie that no longer opens the dashboard when replayed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.browser.test_dashboard_browser import row, start

pytestmark = pytest.mark.slow


def sign_in(page: Any, base: str, user: str) -> None:
    page.goto(f"{base}/tasks/auth/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", "secret")
    page.click("button[type=submit]")
    page.wait_for_url("**/tasks/dashboard")
    page.locator('#live[data-state="live"]').wait_for()


def test_audit_view_lists_sign_ins_and_actions(page: Any, auth_server: str) -> None:
    """The Audit tab shows who did what from where, newest first, as text."""
    sign_in(page, auth_server, "admin")
    task_id = start(auth_server, "slow", "30")
    row(page, task_id).click()
    page.locator("#detail-cancel").click()
    page.locator("#confirm-ok").click()
    page.get_by_text("Task cancelled").wait_for()
    page.locator("#detail-close").click()
    page.locator('nav [data-tab="audit"]').click()
    first = page.locator("#audit tbody tr").first
    first.wait_for()
    assert first.locator("td").nth(1).inner_text() == "admin"
    assert first.locator("td").nth(2).inner_text() == "127.0.0.1"
    assert first.locator("td").nth(3).inner_text() == "cancel"
    assert first.locator("td").nth(4).inner_text() == task_id
    assert first.locator("td").nth(5).inner_text() == "ok"
    page.locator("#audit tbody tr", has_text="login").first.wait_for()
    assert page.locator("#tab-tasks").is_hidden()
    assert page.locator("#audit-csv").get_attribute("href") == "/tasks/audit?format=csv"
    assert page.errors == []


def test_read_only_user_sees_no_actions(page: Any, auth_server: str) -> None:
    """A read-only user sees tasks but no Retry, Cancel, Retry-selected, group retry or Clear history
    control; the API refuses them."""
    sign_in(page, auth_server, "viewer")
    task_id = start(auth_server, "slow", "30")
    row(page, task_id).click()
    page.locator("#detail-title").wait_for()
    page.locator("#detail-body dl").first.wait_for()
    assert page.locator("#detail-cancel").is_hidden()
    assert page.locator("#bulk-retry").is_hidden()
    assert page.locator("#tasks th.sel").is_hidden()
    page.locator('nav [data-tab="dead-letters"]').click()
    page.locator("#dead-letters th").first.wait_for()
    assert page.locator("#clear-history").is_hidden() and page.locator("#dead-letters th.sel").is_hidden()
    page.locator('nav [data-tab="tasks"]').click()
    refused = page.evaluate(
        "id => fetch(`/tasks/${id}/cancel`, {method: 'POST'}).then(r => r.status)", task_id
    )
    assert refused == 403
    screenshot(page, "read-only")
    assert page.errors == []


def test_a_signed_out_cookie_replayed_is_refused(page: Any, auth_server: str) -> None:
    """After sign-out, putting the old cookie back in the browser leads to the login page, not the data."""
    sign_in(page, auth_server, "admin")
    cookie = next(c for c in page.context.cookies() if c["name"] == "taskflow_token")
    page.click("#signout button")
    page.wait_for_url("**/tasks/auth/login")
    page.context.add_cookies([cookie])  # the replay: the very cookie the session had
    assert any(c["value"] == cookie["value"] for c in page.context.cookies())
    page.goto(f"{auth_server}/tasks/dashboard")
    page.wait_for_url("**/tasks/auth/login")
    status = page.evaluate("() => fetch('/tasks').then(r => r.status)")
    assert status == 401
    assert page.errors == []
