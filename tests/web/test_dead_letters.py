"""Dead letters and bulk actions: grouping, bulk retry, retry-failed, export, bad input and read-only."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi import BackgroundTasks, FastAPI

from taskflow import TaskAdmin, TaskManager
from tests.helpers import serve, wait_finished
from tests.web.test_auth import SECRET, client_for

READ = "r" * 24


def make_app(**admin: Any) -> tuple[FastAPI, TaskManager, dict[str, Any]]:
    """`charge` fails with `state["errors"][order_id]` when given; `ship` always fails."""
    tm = TaskManager()
    app = FastAPI()
    TaskAdmin(app, tm, auto_install=True, **admin)
    state: dict[str, Any] = {"errors": {}, "calls": []}

    @tm.task(name="charge")
    async def charge(order_id: int) -> None:
        state["calls"].append(order_id)
        if order_id in state["errors"]:
            raise RuntimeError(state["errors"][order_id])

    @tm.task(name="ship")
    async def ship(order_id: int) -> None:
        raise ValueError("no courier")

    @app.post("/charge/{order_id}")
    async def add_charge(order_id: int, background_tasks: BackgroundTasks) -> Any:
        return {"task_id": background_tasks.add_task(charge, order_id)}

    @app.post("/ship/{order_id}")
    async def add_ship(order_id: int, background_tasks: BackgroundTasks) -> Any:
        return {"task_id": background_tasks.add_task(ship, order_id)}

    return app, tm, state


async def run(client: Any, tm: TaskManager, path: str) -> str:
    """POST `path`, wait for its task to finish, return its id."""
    task_id: str = (await client.post(path)).json()["task_id"]
    await wait_finished(tm, [task_id])
    return task_id


async def test_dead_letters_are_grouped_by_function_and_error() -> None:
    """Failed tasks group by (function, first line of error) with counts and the newest id."""
    app, tm, state = make_app()
    state["errors"] = {1: "card declined", 2: "card declined", 3: "bank down\nretry later"}
    async with serve(app) as client:
        await run(client, tm, "/charge/1")
        newest = await run(client, tm, "/charge/2")
        await run(client, tm, "/charge/3")
        await run(client, tm, "/charge/4")  # succeeds: not a dead letter
        await run(client, tm, "/ship/1")
        body = (await client.get("/tasks/dead-letters")).json()
        only_ship = (await client.get("/tasks/dead-letters", params={"func_name": "ship"})).json()
    groups = {(g["func_name"], g["error"]): g for g in body["groups"]}
    assert set(groups) == {("charge", "card declined"), ("charge", "bank down"), ("ship", "no courier")}
    declined = groups[("charge", "card declined")]
    assert declined["count"] == 2 and declined["newest_task_id"] == newest
    assert declined["statuses"] == {"failed": 2} and len(declined["task_ids"]) == 2
    assert body["scanned"] == 4 and body["complete"] is True
    assert [g["func_name"] for g in only_ship["groups"]] == ["ship"]


async def test_bulk_retry_retries_each_once_and_reports_every_id() -> None:
    """bulk-retry: retries each named task, reports unknown and refused ids, and a second call reuses
    the runs; a task and its failed retry both named give one new run."""
    app, tm, state = make_app()
    state["errors"] = {1: "down", 2: "down"}
    async with serve(app) as client:
        one, two, ok = [await run(client, tm, f"/charge/{n}") for n in (1, 2, 3)]
        first_retry = (await client.post(f"/tasks/{two}/retry")).json()["task_id"]
        await wait_finished(tm, [first_retry])  # fails again ("down")
        state["errors"] = {}
        ids = [one, two, first_retry, ok, "missing"]
        body = (await client.post("/tasks/bulk-retry", json={"task_ids": ids})).json()
        again = (await client.post("/tasks/bulk-retry", json={"task_ids": [one]})).json()
        outcomes = {r["task_id"]: r for r in body["results"]}
        new_ids = [outcomes[one]["new_task_id"], outcomes[first_retry]["new_task_id"]]
        await wait_finished(tm, new_ids)
    assert outcomes[one]["outcome"] == outcomes[first_retry]["outcome"] == "retried"
    assert outcomes[two]["outcome"] == "skipped"
    assert outcomes[ok]["outcome"] == "refused" and outcomes["missing"]["outcome"] == "not_found"
    assert (body["retried"], body["already_retried"], body["refused"]) == (2, 0, 3)
    assert again["results"] == [{"task_id": one, "outcome": "already_retried", "new_task_id": new_ids[0]}]
    assert sorted(state["calls"]) == [1, 1, 2, 2, 2, 3]


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"task_ids": []}', b'{"task_ids": "abc"}', b'{"task_ids": [1]}',
     b'{"task_ids": ["' + b"x" * 100 + b'"]}', b'{"task_ids": [' + b",".join([b'"a"'] * 501) + b"]}",
     b'{"task_ids": ["a"], "pad": "' + b"x" * 70_000 + b'"}'],
)  # fmt: skip
async def test_bulk_retry_refuses_bad_bodies_with_a_json_400(body: bytes) -> None:
    """A body that is not {"task_ids": [1..500 short strings]} (or over 64 KiB) gets a 400 with a message,
    audited."""
    app, _tm, _state = make_app()
    async with serve(app) as client:
        response = await client.post("/tasks/bulk-retry", content=body)
        audit = (await client.get("/tasks/audit")).json()
    assert response.status_code == 400 and response.json()["detail"]
    assert audit[0]["action"] == "bulk_retry" and audit[0]["outcome"] == "400"


async def test_retry_failed_takes_a_function_and_window_and_is_audited() -> None:
    """retry-failed retries the dead letters of one function in a window; bad input is a 4xx JSON."""
    app, tm, state = make_app()
    state["errors"] = {1: "down"}
    async with serve(app) as client:
        await run(client, tm, "/charge/1")
        await run(client, tm, "/ship/1")
        state["errors"] = {}
        body = (
            await client.post("/tasks/retry-failed", params={"func_name": "charge", "since": "1h"})
        ).json()
        await wait_finished(tm, [body["results"][0]["new_task_id"]])
        bad_since = await client.post("/tasks/retry-failed", params={"since": "yesterday"})
        too_many = await client.post("/tasks/retry-failed", params={"limit": 100_000})
        audit = (await client.get("/tasks/audit")).json()
    assert body["retried"] == 1 and len(body["results"]) == 1
    assert state["calls"] == [1, 1]
    assert bad_since.status_code == 400 and "since" in bad_since.json()["detail"]
    assert too_many.status_code == 422 and too_many.json()["detail"]
    assert [e["action"] for e in audit[:2]] == ["retry_failed", "retry_failed"]
    assert audit[1]["detail"].startswith("retried 1")


async def test_export_csv_and_json_follow_the_filters_and_defuse_formulas() -> None:
    """export: CSV (formula cells defused) and JSON of the filtered tasks; a bad format is a 400."""
    app, tm, state = make_app()
    state["errors"] = {1: '=HYPERLINK("http://evil")'}
    async with serve(app) as client:
        failed = await run(client, tm, "/charge/1")
        await run(client, tm, "/charge/2")
        as_csv = await client.get("/tasks/export", params={"status": "failed"})
        as_json = await client.get("/tasks/export", params={"format": "json", "func_name": "charge"})
        bad = await client.get("/tasks/export", params={"format": "xml"})
        bad_status = await client.get("/tasks/export", params={"status": "lost"})
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert [r["task_id"] for r in rows] == [failed] and rows[0]["error"].startswith("'=HYPERLINK")
    assert [r["status"] for r in as_json.json()] == ["success", "failed"]
    assert (
        bad.status_code == 400 and bad_status.status_code == 400 and "status" in bad_status.json()["detail"]
    )


async def test_bulk_actions_are_refused_to_read_only_principals() -> None:
    """A read-only token may read dead letters and export, but bulk retries are a 403."""
    app, _tm, _state = make_app(auth=[("admin", "pw")], secret_key=SECRET, api_tokens={"g": (READ, "read")})
    async with client_for(app) as client:
        read = {"authorization": f"Bearer {READ}"}
        assert (await client.get("/tasks/dead-letters", headers=read)).status_code == 200
        assert (await client.get("/tasks/export", headers=read)).status_code == 200
        refused = [
            await client.post("/tasks/bulk-retry", json={"task_ids": ["x"]}, headers=read),
            await client.post("/tasks/retry-failed", headers=read),
        ]
    assert [r.status_code for r in refused] == [403, 403]
