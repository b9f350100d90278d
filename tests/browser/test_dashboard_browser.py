"""The dashboard in headless Chromium: live rows, detail panel, retry, cancel, bulk retry, login, and
markup from tasks staying inert."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.slow


def start(base: str, kind: str, arg: str) -> str:
    return str(httpx.post(f"{base}/run/{kind}", params={"arg": arg}).json()["task_id"])


def row(page: Any, task_id: str) -> Any:
    return page.locator(f'#tasks tbody tr[data-id="{task_id}"]')


def confirm(page: Any) -> None:
    page.locator("#confirm-ok").click()


def open_dashboard(page: Any, base: str) -> None:
    page.goto(f"{base}/tasks/dashboard")
    page.locator('#live[data-state="live"]').wait_for()


def test_a_task_appears_live_and_its_detail_opens(page: Any, server: str) -> None:
    """A task started after the page loaded shows up and finishes without a reload; its detail opens."""
    open_dashboard(page, server)
    for n in range(6):
        start(server, "quick", str(n))
    task_id = start(server, "quick", "42")
    row(page, task_id).locator(".status.success").wait_for()
    page.locator('[data-metric="success"] .value').filter(has_text="7").wait_for()
    row(page, task_id).click()
    detail = page.locator("#detail")
    detail.wait_for()
    detail.get_by_text(task_id).wait_for()
    detail.get_by_text("quick step 42").wait_for()  # the attempt's log line
    detail.locator(".attempt h3").first.wait_for()
    detail.get_by_text("42", exact=True).wait_for()  # arguments (display_func_args=True)
    screenshot(page, "detail")
    assert page.errors == []


def test_tasks_made_together_have_distinct_short_ids_and_search_finds_them(page: Any, server: str) -> None:
    """Two tasks made in one request show different short ids, the full id on hover, and searching by the
    shown short id (or by a full-id prefix) finds them; the detail's copy button copies the full id."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_dashboard(page, server)
    first, second = httpx.post(f"{server}/run-pair/quick", params={"arg": "7"}).json()["task_ids"]
    assert first[:8] == second[:8]  # what every task of that minute used to show
    cells = [row(page, task_id).locator("td.mono") for task_id in (first, second)]
    for cell in cells:
        cell.wait_for()
    shown = [cell.inner_text() for cell in cells]
    assert shown == [first[-8:], second[-8:]] and shown[0] != shown[1]
    assert [cell.get_attribute("title") for cell in cells] == [first, second]
    page.fill("#f-search", shown[1])
    row(page, first).wait_for(state="detached")
    row(page, second).wait_for()
    assert page.locator("#tasks tbody tr").count() == 1
    row(page, second).click()
    title = page.locator("#detail-title")
    title.filter(has_text=shown[1]).wait_for()
    assert title.get_attribute("title") == second
    page.locator("#detail button.copy").click()
    page.locator(".toast").filter(has_text="copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == second
    # A full-id prefix still finds both: the part they share. Not a fixed length such as `first[:13]`: that
    # is the whole millisecond of a version 7 id, and on a busy machine the two ids of one request are made
    # a millisecond or more apart, so it would find only the first.
    shared = next(i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b)
    page.fill("#f-search", first[:shared])
    row(page, first).wait_for()
    row(page, second).wait_for()
    assert page.errors == []


def test_retry_a_failed_task_and_watch_it_succeed(page: Any, server: str) -> None:
    """Retry from the detail panel, with confirmation; the new task runs and succeeds live."""
    open_dashboard(page, server)
    failed = start(server, "flaky", "retry-me")
    row(page, failed).locator(".status.failed").wait_for()
    row(page, failed).click()
    page.locator("#detail").get_by_text("Traceback").first.wait_for()
    screenshot(page, "failed-detail")
    page.locator("#detail-retry").click()
    page.locator("#confirm").wait_for()
    confirm(page)
    page.get_by_text("1 task retried").wait_for()
    successes = page.locator("#tasks tbody tr", has_text="flaky").locator(".status.success")
    successes.first.wait_for()
    assert page.errors == []


def test_bulk_retry_of_selected_failed_tasks(page: Any, server: str) -> None:
    """Select failed rows, confirm, and every one of them is retried."""
    open_dashboard(page, server)
    ids = [start(server, "flaky", f"bulk-{n}") for n in range(3)]
    for task_id in ids:
        row(page, task_id).locator(".status.failed").wait_for()
        row(page, task_id).locator("input[type=checkbox]").check()
    page.locator("#bulk-retry", has_text="(3)").click()
    confirm(page)
    page.get_by_text("3 tasks retried").wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#tasks tbody tr')]"
        ".filter(r => r.textContent.includes('flaky') && r.querySelector('.status.success')).length >= 3"
    )


def test_cancel_a_running_task(page: Any, server: str) -> None:
    """Cancel from the detail panel, with confirmation."""
    open_dashboard(page, server)
    task_id = start(server, "slow", "30")
    row(page, task_id).locator(".status.running").wait_for()
    row(page, task_id).click()
    page.locator("#detail-cancel").click()
    confirm(page)
    row(page, task_id).locator(".status.cancelled").wait_for()


def test_pause_buffers_updates_until_resume(page: Any, server: str) -> None:
    """While paused, new tasks are counted but not shown; resuming applies them."""
    open_dashboard(page, server)
    page.click("#pause")
    task_id = start(server, "quick", "1234")
    page.locator("#live-text", has_text="1 new").wait_for()
    assert row(page, task_id).count() == 0
    page.click("#pause")
    row(page, task_id).wait_for()
    page.evaluate("localStorage.clear()")


def test_markup_from_a_task_stays_text(page: Any, server: str) -> None:
    """`<script>` and `<img onerror>` in a log line and an error message show as text and never run."""
    payload = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script><b id="bold">b</b>'
    open_dashboard(page, server)
    task_id = start(server, "noisy", payload)
    row(page, task_id).locator(".status.failed").wait_for()
    row(page, task_id).click()
    page.locator("#detail pre.logs", has_text="<script>window.__xss=2</script>").wait_for()
    assert page.locator("#detail img, #detail script, #tasks img, #bold").count() == 0
    assert page.evaluate("window.__xss") is None
    assert row(page, task_id).locator("td.error").inner_text().startswith("<img src=x")


def test_filters_and_supervision_view(page: Any, server: str) -> None:
    """The status filter narrows the table; the supervision tab lists the registered functions (kind, with
    `process` for a process task, queue and priority), the actors (one that gave up, with its last error as
    text) and the configured policies with their sources."""
    start(server, "flaky", "filter")
    open_dashboard(page, server)
    page.locator("#chart-throughput rect").first.wait_for()
    screenshot(page, "dashboard")
    page.emulate_media(color_scheme="dark")
    screenshot(page, "dashboard-dark")
    page.emulate_media(color_scheme="light")
    page.select_option("#f-status", "failed")
    page.wait_for_function(
        "() => { const rows = [...document.querySelectorAll('#tasks tbody tr')];"
        " return rows.length > 0 && rows.every(r => r.querySelector('.status.failed')); }"
    )
    page.locator('nav [data-tab="supervision"]').click()

    def function_row(name: str) -> tuple[str, str, str]:
        row = page.locator("#functions tbody tr", has_text=name)
        kind, queue, priority = (row.locator(f".fn-{c}").inner_text() for c in ("kind", "queue", "priority"))
        return kind, queue, priority

    page.locator("#functions tbody tr", has_text="flaky").wait_for()
    none = "\N{EN DASH}"  # what the table shows for no value
    assert function_row("flaky") == ("sync", none, none)
    # A process task's Kind is `process`; a function with a queue shows it and its priority.
    assert function_row("crunch") == ("process", none, none)
    assert function_row("mail_digest") == ("async", "mail", "7")
    page.locator("#supervisors tbody tr", has_text="taskflow").first.wait_for()
    actor = page.locator("#actors tbody tr.gave-up", has_text="feed_poller")
    actor.wait_for()
    assert "ConnectionError: feed <b>unreachable</b>" in actor.inner_text()
    assert page.locator("#actors b").count() == 0
    page.locator("#policies tbody tr", has_text="retry_on").wait_for()
    assert "TaskManager(config=...) [policies.feeds]" in page.locator("#policies tbody").inner_text()
    screenshot(page, "supervision")


def test_login_and_logout(page: Any, auth_server: str) -> None:
    """The dashboard sends a stranger to the login page; a wrong password is refused; sign in and out."""
    page.goto(f"{auth_server}/tasks/dashboard")
    page.wait_for_url("**/tasks/auth/login")
    screenshot(page, "login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    page.get_by_text("Invalid username or password.").wait_for()
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "secret")
    page.click("button[type=submit]")
    page.wait_for_url("**/tasks/dashboard")
    page.locator('#live[data-state="live"]').wait_for()
    task_id = start_with_auth(page, auth_server)
    row(page, task_id).wait_for()
    cookie = next(c for c in page.context.cookies() if c["name"] == "taskflow_token")
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Lax"
    page.click("#signout button")
    page.wait_for_url("**/tasks/auth/login")
    page.goto(f"{auth_server}/tasks/dashboard")
    page.wait_for_url("**/tasks/auth/login")
    assert page.errors == []


def start_with_auth(page: Any, base: str) -> str:
    # /run is the app's own route (not guarded); the task then shows up on the signed-in dashboard.
    return start(base, "quick", "7")


def test_dead_letters_tab_retries_a_group_and_links_the_new_task(page: Any, server: str) -> None:
    """The Dead letters tab groups a failure (markup stays text), retries the group with confirmation,
    and the toast links to the new task, whose detail opens; clearing history asks first; the Export link
    follows the filters."""
    open_dashboard(page, server)
    failed = start(server, "flaky", "dead-letter")
    row(page, failed).locator(".status.failed").wait_for()
    page.locator('nav [data-tab="dead-letters"]').click()
    group = page.locator("#dead-letters tbody tr", has_text="first run of dead-letter fails")
    group.wait_for()
    assert page.locator("#dead-letters tbody b").count() == 0  # the error's <b> is text, not markup
    group.locator("button.dl-retry").click()
    confirm(page)
    link = page.locator(".toast a")
    link.wait_for()
    new_id = link.get_attribute("title")
    assert new_id and new_id != failed
    link.click()
    page.locator("#detail").get_by_text(new_id).first.wait_for()
    page.locator("#detail-close").click()
    page.locator("#clear-history").click()
    page.locator("#confirm-text", has_text="older than 7 days").wait_for()
    confirm(page)
    page.get_by_text("0 finished tasks forgotten").wait_for()  # every task here is recent
    page.locator('nav [data-tab="tasks"]').click()
    page.locator("#f-status").select_option("failed")
    href = page.locator("#export-csv").get_attribute("href")
    assert href == "/tasks/export?format=csv&status=failed"
    assert page.errors == []
