"""Regenerate the documentation screenshots of the Dead letters, Audit, Schedules and Queues tabs (docs/img).

    PYTHONPATH=. python scripts/doc_screenshots.py [folder]    # default: docs/img

Needs playwright and /usr/bin/chromium (never `playwright install`). Starts the browser tests' app
(`tests.browser.app`) under uvicorn with auth and a preloaded history, makes a few failures of its own,
signs in, takes the actions an operator would (a failed sign-in, a cancel, a group retry, a history
clean-up), and saves `dead-letters.png` and `audit.png`. Then it schedules a one-off digest, runs the
hourly schedule now and saves `schedules.png` (its last run and outcome, the waiting one-off); finishes two
short tasks in the `mail` queue and offers it six long ones (one runs, three wait, two are rejected) and
saves `queues.png`. All at 1400 x 900, the size of the other screenshots.
Look at the images before committing them. The other screenshots come from the browser tests:
`TASKFLOW_SCREENSHOTS=<folder> pytest tests/browser`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a file: the checkout's packages, not an installed copy
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.browser.conftest import ARGS, CHROMIUM  # noqa: E402
from tests.browser.server import uvicorn_server  # noqa: E402

HISTORY = 120  # preloaded finished tasks: one in ten failed, spread over seven functions
TIMEOUT_MS = 15_000


def start(base: str, kind: str, arg: str) -> str:
    """Start one task through the app's own (unguarded) route; its id."""
    return str(httpx.post(f"{base}/run/{kind}", params={"arg": arg}, timeout=10).json()["task_id"])


def sign_in(page: Any, base: str, password: str) -> None:
    page.goto(f"{base}/tasks/auth/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def shoot_schedules(page: Any, base: str, folder: Path) -> None:
    """A one-off waiting for three hours, the hourly schedule run now: its last run succeeded."""
    httpx.post(f"{base}/schedule-digest", params={"run_key": "weekly-digest", "delay": "10800"}, timeout=10)
    page.locator('nav [data-tab="schedules"]').click()
    row = page.locator('#schedules tbody tr[data-schedule="hourly_report"]')
    row.locator("button.sched-run").click()
    page.get_by_text("Ran hourly_report").first.wait_for()
    for _ in range(50):  # bounded: the run takes 50 ms
        page.locator("#schedules-refresh").click()
        if row.locator(".status.success").count():
            break
        page.wait_for_timeout(100)
    row.locator(".status.success").wait_for()
    page.locator("#one-offs tbody tr", has_text="weekly-digest").wait_for()
    page.locator(".toast").last.wait_for(state="detached")
    page.screenshot(path=str(folder / "schedules.png"))


def shoot_queues(page: Any, base: str, folder: Path) -> None:
    """Two short tasks finished in `mail` (concurrency 1, max size 3), then six long ones offered: one
    runs, three wait, the last two are refused with 429."""
    for _ in range(2):
        httpx.post(f"{base}/run-queued", params={"seconds": "0.05"}, timeout=10)
    for _ in range(100):  # bounded: each takes 50 ms
        if page.request.get(f"{base}/tasks/queues").json()[0]["finished"] >= 2:
            break
        page.wait_for_timeout(100)
    answers = [httpx.post(f"{base}/run-queued", params={"seconds": "600"}, timeout=10) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 4 + [429] * 2, [a.status_code for a in answers]
    page.locator('nav [data-tab="queues"]').click()
    row = page.locator('#queues tr[data-queue="mail"]')
    row.locator(".queue-rejected").get_by_text("2", exact=True).wait_for()
    row.locator(".queue-pending").get_by_text("3", exact=True).wait_for()
    page.screenshot(path=str(folder / "queues.png"))


def main(folder: Path) -> None:
    """Save the four screenshots into `folder`."""
    from playwright.sync_api import sync_playwright

    folder.mkdir(parents=True, exist_ok=True)
    env = {"TASKFLOW_TEST_AUTH": "1", "TASKFLOW_TEST_SECRET": "shots", "TASKFLOW_TEST_FILL": str(HISTORY)}
    with uvicorn_server(**env) as (base, _), sync_playwright() as playwright:
        # `noisy` fails with its argument as the error: two alike make one group of two.
        for error in ("card declined: insufficient funds",) * 2 + ("payload has no field 'customer_id'",):
            start(base, "noisy", error)
        slow = start(base, "slow", "60")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        sign_in(page, base, "not-the-password")  # a failed sign-in, for the audit log
        page.locator("text=Invalid").first.wait_for()
        sign_in(page, base, "secret")
        page.wait_for_url("**/tasks/dashboard")
        page.locator('#live[data-state="live"]').wait_for()

        page.locator(f'#tasks tbody tr[data-id="{slow}"]').click()
        page.locator("#detail-cancel").click()
        page.locator("#confirm-ok").click()
        page.get_by_text("Task cancelled").wait_for()
        page.locator("#detail-close").click()

        page.locator('nav [data-tab="dead-letters"]').click()
        group = page.locator("#dead-letters tbody tr", has_text="card declined")
        group.wait_for()
        group.locator("button.dl-retry").click()  # both runs fail again: the group grows to four
        page.locator("#confirm-ok").click()
        page.locator(".toast a").wait_for()
        page.locator("#clear-history").click()  # nothing is a week old: forgets none, but is audited
        page.locator("#confirm-ok").click()
        page.get_by_text("finished tasks forgotten").wait_for()
        page.locator("#dl-refresh").click()
        page.locator("#dead-letters tbody tr", has_text="card declined").locator("text=4 failed").wait_for()
        page.locator(".toast").last.wait_for(state="detached")  # a clean picture: toasts last 4 s
        page.screenshot(path=str(folder / "dead-letters.png"))

        page.locator('nav [data-tab="audit"]').click()
        page.locator("#audit tbody tr", has_text="bulk_retry").wait_for()
        page.screenshot(path=str(folder / "audit.png"))
        shoot_schedules(page, base, folder)  # after the audit picture: their actions are audited too
        shoot_queues(page, base, folder)
        browser.close()
    names = ("dead-letters", "audit", "schedules", "queues")
    print(f"saved {', '.join(str(folder / f'{name}.png') for name in names)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "img")
