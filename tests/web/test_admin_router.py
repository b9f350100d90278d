"""The admin routes are grouped so that the app's other requests skip them with one test, yet still work."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI
from starlette.routing import Match
from starlette.types import Scope

from taskflow import TaskAdmin, TaskManager
from tests.helpers import serve


async def test_requests_for_other_paths_never_try_the_admin_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    tried: list[str] = []
    full_match = APIRouter.matches

    def counting(self: APIRouter, scope: Scope) -> tuple[Match, Scope]:
        tried.append(scope["path"])
        return full_match(self, scope)

    monkeypatch.setattr(APIRouter, "matches", counting)
    app = FastAPI()
    TaskAdmin(app, TaskManager())

    @app.get("/hello")
    async def hello() -> str:
        return "world"

    async with serve(app) as client:
        assert (await client.get("/hello")).json() == "world"
        assert tried == []
        assert (await client.get("/tasks/metrics")).status_code == 200
        assert tried and set(tried) == {"/tasks/metrics"}  # the admin routes are tried for their own path


async def test_admin_and_app_routes_both_answer_when_the_admin_comes_first() -> None:
    tm = TaskManager()
    app = FastAPI()
    TaskAdmin(app, tm, path="/admin/tasks")

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/admin/other")  # shares the first path segment, not the admin path
    async def other() -> dict[str, str]:
        return {"other": "yes"}

    async with serve(app) as client:
        assert (await client.get("/hello")).json() == {"hello": "world"}
        assert (await client.get("/admin/other")).json() == {"other": "yes"}
        listing = await client.get("/admin/tasks")
        assert listing.status_code == 200 and isinstance(listing.json(), list)
        assert (await client.get("/admin/tasks/metrics")).status_code == 200
        assert (await client.get("/admin/tasks/dashboard")).status_code == 200
        schema = (await client.get("/openapi.json")).json()
        assert "/admin/tasks" in schema["paths"] and "/hello" in schema["paths"]
