"""Measure the dashboard against a large history: payload sizes and times (not a test; prints a report).

    python -m tests.browser.measure [tasks]        # default 100000; needs playwright + /usr/bin/chromium

Starts the test app under uvicorn with `tasks` finished tasks preloaded, then times the JSON pages, the
stream's snapshot and change events, and the dashboard in headless Chromium. Numbers are for the docs
(docs/dashboard.md), never asserted.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import httpx

from tests.browser.conftest import ARGS, CHROMIUM
from tests.browser.server import uvicorn_server


def timed(fn: Callable[[], object], runs: int = 5) -> float:
    """Median wall time of `fn` in milliseconds."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def first_events(base: str, client: httpx.Client) -> tuple[int, float, list[int]]:
    """(snapshot bytes, ms to the snapshot, sizes of the task events of one new task)."""
    start = time.perf_counter()
    with httpx.stream("GET", f"{base}/tasks/dashboard/stream", timeout=60) as stream:
        chunks = stream.iter_text()
        head = ""
        while "event: state" not in head or not head.endswith("\n\n"):
            head += next(chunks)
        elapsed = (time.perf_counter() - start) * 1000
        client.post("/run/quick", params={"arg": "1"})
        rest = ""
        while '"status":"success"' not in rest:
            rest += next(chunks)
    events = [len(block) for block in rest.split("\n\n") if "event: task" in block]
    return len(head), elapsed, events


def main(count: int) -> None:
    """Print the report."""
    started = time.monotonic()
    with uvicorn_server(TASKFLOW_TEST_FILL=str(count)) as (base, _):
        print(f"server with {count} tasks ready in {time.monotonic() - started:.1f} s")
        client = httpx.Client(base_url=base, timeout=60)
        paths = ("/tasks?limit=50", "/tasks?limit=50&status=failed", "/tasks/metrics", "/tasks/dashboard")
        for path in paths:
            size = len(client.get(path).content)
            print(f"GET {path:32} {size:>7} bytes  {timed(lambda p=path: client.get(p)):6.0f} ms")
        assets = ("dashboard.js", "dashboard.css", "favicon.svg")
        total = sum(len(client.get(f"/tasks/dashboard/static/{name}").content) for name in assets)
        print(f"static assets (js, css, icon)     {total:>7} bytes")
        snapshot, ms, events = first_events(base, client)
        print(f"stream snapshot (event: state)    {snapshot:>7} bytes  {ms:6.0f} ms")
        print(f"stream change events (event: task) sizes: {events}")

        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            ready = "() => document.querySelectorAll('#tasks tbody tr').length >= 50 && !older.disabled"
            for _ in range(3):
                start = time.perf_counter()
                page.goto(f"{base}/tasks/dashboard")
                page.locator('#live[data-state="live"]').wait_for(timeout=60_000)
                page.wait_for_function(ready, timeout=60_000)
                elapsed = (time.perf_counter() - start) * 1000
                print(f"browser: 50 rows, live, next page ready: {elapsed:.0f} ms")
            start = time.perf_counter()
            page.click("#older")
            page.wait_for_function("() => window['page-info'].textContent.startsWith('page 2')")
            print(f"browser: older page: {(time.perf_counter() - start) * 1000:.0f} ms")
            browser.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
