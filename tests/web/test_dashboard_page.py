"""The dashboard page and its assets: served offline, escaped, locked down by CSP, before `/{task_id}`."""

from __future__ import annotations

import re
from importlib import resources

from fastapi import FastAPI

from taskflow import TaskAdmin, TaskManager
from tests.helpers import serve

STATIC = resources.files("taskflow.web").joinpath("static")


def make_app(**options: object) -> FastAPI:
    app = FastAPI()
    TaskAdmin(app, TaskManager(), **options)  # type: ignore[arg-type]
    return app


async def test_page_is_served_with_a_strict_policy() -> None:
    """GET {p}/dashboard is HTML (not taken for a task id) with a CSP that forbids inline script."""
    async with serve(make_app()) as client:
        response = await client.get("/tasks/dashboard")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert 'data-base="/tasks"' in response.text


async def test_page_escapes_its_configuration() -> None:
    """A title with markup lands in the page as text."""
    async with serve(make_app(title='"><script>alert(1)</script>')) as client:
        text = (await client.get("/tasks/dashboard")).text
        assert "<script>alert(1)" not in text
        assert "&quot;&gt;&lt;script&gt;" in text


async def test_page_works_under_another_prefix() -> None:
    """Everything follows `TaskAdmin(path=...)`."""
    async with serve(make_app(path="/admin/jobs")) as client:
        text = (await client.get("/admin/jobs/dashboard")).text
        for url in re.findall(r'(?:src|href)="([^"]+)"', text):
            assert url.startswith("/admin/jobs/dashboard/static/")
            assert (await client.get(url)).status_code == 200


async def test_assets_are_cached_by_etag_and_unknown_ones_are_404() -> None:
    """Static files carry an ETag and answer 304 to it; names outside the list are refused."""
    async with serve(make_app()) as client:
        response = await client.get("/tasks/dashboard/static/dashboard.js")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/javascript")
        etag = response.headers["etag"]
        again = await client.get("/tasks/dashboard/static/dashboard.js", headers={"if-none-match": etag})
        assert again.status_code == 304
        for name in ("login.html", "..%2F_admin.py", "nope.js"):
            assert (await client.get(f"/tasks/dashboard/static/{name}")).status_code == 404


async def test_search_finds_tasks_by_id_prefix() -> None:
    """The id search box matches the start of task ids and validates its input."""
    app = FastAPI()
    manager = TaskManager()
    TaskAdmin(app, manager)

    @manager.task()
    def work() -> None:
        pass

    task_id, _ = manager.launcher.submit(work, (), {})
    async with serve(app) as client:
        found = (await client.get(f"/tasks/dashboard/search?q={task_id[:6]}")).json()
        assert [t["task_id"] for t in found] == [task_id]
        assert (await client.get("/tasks/dashboard/search?q=zzzz")).json() == []
        assert (await client.get("/tasks/dashboard/search?q=" + "a" * 65)).status_code == 422


def test_assets_are_offline_and_never_inject_html() -> None:
    """No CDN, no web fonts, and the script builds the DOM with text only (no innerHTML and friends)."""
    names = ["dashboard.html", "dashboard.js", "dashboard.css", "login.html"]
    for name in names:
        text = STATIC.joinpath(name).read_text(encoding="utf-8")
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), name
        assert "@import" not in text
        assert "@font-face" not in text
    script = STATIC.joinpath("dashboard.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script.replace("There is no innerHTML", ""), sink
    assert "prefers-color-scheme: dark" in STATIC.joinpath("dashboard.css").read_text(encoding="utf-8")


def test_assets_stay_small() -> None:
    """The whole page (HTML, JS, CSS) stays well under 100 kB, uncompressed."""
    total = sum(
        len(STATIC.joinpath(n).read_bytes()) for n in ("dashboard.html", "dashboard.js", "dashboard.css")
    )
    assert total < 100_000
