"""The Schedules view in headless Chromium: next and last run with its outcome, run now, pause and resume;
no action controls for a read-only user."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.test_access_browser import sign_in

pytestmark = pytest.mark.slow


def schedule_row(page: Any) -> Any:
    return page.locator('#schedules tbody tr[data-schedule="hourly_report"]')


def test_schedules_view_runs_pauses_and_resumes(page: Any, server: str) -> None:
    """Run now shows a successful last run; Pause shows the schedule paused, Resume its next run again."""
    page.goto(f"{server}/tasks/dashboard")
    page.locator('nav [data-tab="schedules"]').click()
    row = schedule_row(page)
    row.wait_for()
    assert row.locator("td").nth(1).inner_text() == "every 3600s"
    row.locator("button.sched-run").click()
    page.get_by_text("Ran hourly_report").first.wait_for()
    for _ in range(50):  # bounded: the run takes 50 ms
        page.locator("#schedules-refresh").click()
        if row.locator("td").nth(3).locator(".status.success").count():
            break
        page.wait_for_timeout(100)
    assert row.locator("td").nth(3).locator(".status.success").count() == 1
    row.locator("button.sched-pause").click()
    row.locator(".status, .badge.paused").first.wait_for()
    page.locator('#schedules tbody tr[data-schedule="hourly_report"] button.sched-resume').wait_for()
    assert row.locator("td").nth(2).inner_text() == "paused"
    row.locator("button.sched-resume").click()
    page.locator('#schedules tbody tr[data-schedule="hourly_report"] button.sched-pause').wait_for()
    assert row.locator("td").nth(2).inner_text() != "paused"
    assert page.errors == []


def test_read_only_user_sees_schedules_without_actions(page: Any, auth_server: str) -> None:
    """A read-only user sees the schedule but no Pause, Resume or Run now control."""
    sign_in(page, auth_server, "viewer")
    page.locator('nav [data-tab="schedules"]').click()
    row = schedule_row(page)
    row.wait_for()
    assert row.locator("button.sched-run").is_hidden()
    assert row.locator("button.sched-pause").is_hidden()
    assert page.errors == []
