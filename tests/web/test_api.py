"""The JSON API: 0.5.0 shapes and codes, filters and paging, retry and cancel, and bad input."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from cryptography.fernet import Fernet
from fastapi import BackgroundTasks, FastAPI

from taskflow import TaskAdmin, TaskManager, TaskStatus
from tests.helpers import serve, wait_finished, wait_until

KEYS_050 = {
    "task_id", "func_name", "status", "created_at", "start_time", "end_time", "duration",
    "retries_used", "error", "logs", "stacktrace", "tags",
}  # fmt: skip
METRIC_KEYS_050 = {
    "total", "success", "failed", "running", "pending", "interrupted", "success_rate", "avg_duration_seconds"
}  # fmt: skip


def make_app(**manager_options: Any) -> tuple[FastAPI, TaskManager, dict[str, Any]]:
    tm = TaskManager(**manager_options)
    app = FastAPI()
    TaskAdmin(app, tm, auto_install=True)
    state: dict[str, Any] = {"fail": True, "calls": [], "gate": None}

    @tm.task(name="custom-name")
    async def flaky(order_id: int, *, note: str = "") -> None:
        state["calls"].append((order_id, note))
        if state["fail"]:
            raise RuntimeError("payment gateway down")

    @tm.task()
    async def blocker() -> None:
        await state["gate"].wait()

    @app.post("/orders/{order_id}")
    async def create(order_id: int, background_tasks: BackgroundTasks, tag: str = "web") -> Any:
        return {
            "task_id": background_tasks.add_task(flaky, order_id, note="secret-note", tags={"source": tag})
        }

    @app.post("/block")
    async def block(background_tasks: BackgroundTasks) -> Any:
        return {"task_id": background_tasks.add_task(blocker)}

    return app, tm, state


async def test_list_detail_and_metrics_keep_the_050_shapes() -> None:
    """GET /tasks, /tasks/{id} and /tasks/metrics answer with fastapi-taskflow 0.5.0's keys (and more)."""
    app, tm, _state = make_app()
    async with serve(app) as client:
        task_id = (await client.post("/orders/1")).json()["task_id"]
        await wait_finished(tm, [task_id])
        listing = (await client.get("/tasks")).json()
        detail = (await client.get(f"/tasks/{task_id}")).json()
        metrics = (await client.get("/tasks/metrics")).json()
    assert [t["task_id"] for t in listing] == [task_id]
    assert set(detail) >= KEYS_050 and detail["status"] == "failed" and detail["func_name"] == "custom-name"
    assert detail["error"] == "payment gateway down" and "RuntimeError" in detail["stacktrace"]
    assert detail["created_at"].endswith("+00:00") and detail["tags"] == {"source": "web"}
    assert "args" not in detail and "kwargs" not in detail and "secret-note" not in str(detail)
    assert set(metrics) >= METRIC_KEYS_050 and {
        "cancelled",
        "p50_duration_seconds",
        "p95_duration_seconds",
    } <= set(metrics)
    assert (metrics["total"], metrics["failed"], metrics["success_rate"]) == (1, 1, 0.0)


async def test_filters_and_cursor_paging() -> None:
    """status, func_name, tag and since filter; limit/cursor pages through everything exactly once."""
    app, tm, state = make_app()
    state["fail"] = False
    async with serve(app) as client:
        ids = [
            (await client.post(f"/orders/{i}", params={"tag": "a" if i % 2 else "b"})).json()["task_id"]
            for i in range(7)
        ]
        await wait_finished(tm, ids)
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            response = await client.get("/tasks", params=params)
            seen += [t["task_id"] for t in response.json()]
            cursor = response.headers.get("x-next-cursor")
            pages += 1
            if not cursor:
                break
        tagged = (await client.get("/tasks", params={"tag": "source:a"})).json()
        by_status = (await client.get("/tasks", params={"status": "success,failed"})).json()
        none_failed = (await client.get("/tasks", params={"status": "failed"})).json()
        by_func = (await client.get("/tasks", params={"func_name": "custom-name"})).json()
        recent = (await client.get("/tasks", params={"since": "1h"})).json()
        future = (await client.get("/tasks", params={"since": "2999-01-01T00:00:00"})).json()
    assert pages == 3 and sorted(seen) == sorted(ids) and len(seen) == 7
    assert len(tagged) == 3 and len(by_status) == 7 and none_failed == [] and len(by_func) == 7
    assert len(recent) == 7 and future == []


async def test_retry_endpoint_codes_and_new_task() -> None:
    """retry: 200 with the new task for a failed one, 400 for wrong status, 404 for unknown ids."""
    app, tm, state = make_app()
    async with serve(app) as client:
        task_id = (await client.post("/orders/9")).json()["task_id"]
        await wait_finished(tm, [task_id])
        state["fail"] = False
        response = await client.post(f"/tasks/{task_id}/retry")
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"task_id", "task", "created"} and body["task"]["status"] == "pending"
        (new,) = await wait_finished(tm, [body["task_id"]])
        assert new.status is TaskStatus.SUCCESS and new.tags == {"source": "web", "retry_of": task_id}
        assert (await client.post(f"/tasks/{body['task_id']}/retry")).status_code == 400
        assert (await client.post("/tasks/nope/retry")).json() == {"detail": "Task not found"}
    assert state["calls"] == [(9, "secret-note"), (9, "secret-note")]


async def test_cancel_endpoint_pending_running_and_finished() -> None:
    """cancel: a running task ends CANCELLED; a finished one answers 400; unknown ids 404."""
    app, tm, state = make_app()
    state["gate"] = anyio.Event()
    async with serve(app) as client:
        task_id = (await client.post("/block")).json()["task_id"]
        await wait_until(lambda: tm.get(task_id).status is TaskStatus.RUNNING)
        response = await client.post(f"/tasks/{task_id}/cancel")
        assert response.status_code == 200 and response.json()["task"]["status"] == "cancelled"
        assert (await client.post(f"/tasks/{task_id}/cancel")).status_code == 400
        assert (await client.post("/tasks/unknown/cancel")).status_code == 404
        metrics = (await client.get("/tasks/metrics")).json()
    assert metrics["cancelled"] == 1


async def test_encrypted_arguments_never_appear_and_survive_retry() -> None:
    """With encrypt_args_key, args are not in the record or the API, and retry still has them."""
    key = Fernet.generate_key()
    app, tm, state = make_app(encrypt_args_key=key)
    async with serve(app) as client:
        task_id = (await client.post("/orders/77")).json()["task_id"]
        await wait_finished(tm, [task_id])
        record = tm.get(task_id)
        assert record.args == () and record.kwargs == {} and record.encrypted_payload is not None
        assert b"secret-note" not in record.encrypted_payload
        listing = (await client.get("/tasks")).json()
        assert "secret-note" not in str(listing)
        assert all("args" not in t and "kwargs" not in t for t in listing)
        state["fail"] = False
        new_id = (await client.post(f"/tasks/{task_id}/retry")).json()["task_id"]
        await wait_finished(tm, [new_id])
    assert state["calls"] == [(77, "secret-note"), (77, "secret-note")]
    assert tm.get(new_id).status is TaskStatus.SUCCESS


async def test_tampered_ciphertext_fails_the_task_and_never_runs_the_function() -> None:
    """A payload altered after add_task is refused: the task fails, the function never sees it."""
    tm = TaskManager(encrypt_args_key=Fernet.generate_key())
    ran: list[int] = []

    @tm.task()
    async def job(x: int) -> None:
        ran.append(x)

    async with tm.running():
        task_id, _ = tm.launcher.submit(job, (1,), {})
        record = tm.get(task_id)
        assert record.encrypted_payload is not None
        record.encrypted_payload = record.encrypted_payload[:-4] + b"AAAA"
        await tm.launcher.start(task_id)
        (done,) = await wait_finished(tm, [task_id])
    assert ran == [] and done.status is TaskStatus.FAILED and "tampered" in (done.error or "")


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "/tasks/" + "x" * 10_000, None),
        ("GET", "/tasks/does-not-exist", None),
        ("POST", "/tasks/" + "y" * 10_000 + "/retry", None),
        ("POST", "/tasks/" + "y" * 10_000 + "/cancel", None),
        ("GET", "/tasks", {"limit": "abc"}),
        ("GET", "/tasks", {"limit": "0"}),
        ("GET", "/tasks", {"limit": "100000"}),
        ("GET", "/tasks", {"cursor": "not-a-cursor"}),
        ("GET", "/tasks", {"cursor": "W10"}),
        ("GET", "/tasks", {"status": "exploded"}),
        ("GET", "/tasks", {"since": "yesterday-ish"}),
        ("GET", "/tasks", {"tag": "no-separator"}),
        ("DELETE", "/tasks/history", {"value": "1", "unit": "fortnight"}),
        ("DELETE", "/tasks/history", {"value": "-1", "unit": "day"}),
        ("PUT", "/tasks/metrics", None),
        ("DELETE", "/tasks/some-id/retry", None),
    ],
)
async def test_bad_input_gets_a_4xx_json_error_and_changes_nothing(
    method: str, path: str, params: dict[str, str] | None
) -> None:
    """Unknown or 10 kB ids, wrong types, bad cursors and wrong methods: 4xx JSON, never a 500."""
    app, tm, state = make_app()
    state["fail"] = False
    async with serve(app) as client:
        task_id = (await client.post("/orders/1")).json()["task_id"]
        await wait_finished(tm, [task_id])
        before = (await client.get("/tasks")).json()
        response = await client.request(method, path, params=params)
        after = (await client.get("/tasks")).json()
    assert 400 <= response.status_code < 500
    assert isinstance(response.json()["detail"], str | list)
    assert before == after


async def test_history_deletion_removes_only_old_finished_tasks() -> None:
    """DELETE /tasks/history removes finished tasks older than the window, never live ones."""
    app, tm, state = make_app()
    state["fail"] = False
    async with serve(app) as client:
        task_id = (await client.post("/orders/1")).json()["task_id"]
        await wait_finished(tm, [task_id])
        kept = (await client.delete("/tasks/history", params={"value": 1, "unit": "hour"})).json()
        from datetime import timedelta

        record = tm.get(task_id)
        record.end_time = record.end_time - timedelta(hours=2)  # type: ignore[operator]
        removed = (await client.delete("/tasks/history", params={"value": 1, "unit": "hour"})).json()
        gone = await client.get(f"/tasks/{task_id}")
    assert kept["deleted"] == 0 and removed["deleted"] == 1 and gone.status_code == 404


async def test_supervision_endpoint_lists_policies_and_limits() -> None:
    """GET /tasks/supervision shows the supervision tree and each registered function's policy."""
    app, _tm, _ = make_app(max_concurrent_tasks=4)
    async with serve(app) as client:
        body = (await client.get("/tasks/supervision")).json()
    names = {f["name"]: f for f in body["functions"]}
    assert body["running"] is True and body["supervisor"]["name"] == "taskflow"
    assert body["supervisor"]["limiter"]["total"] == 4
    assert names["custom-name"]["kind"] == "async" and names["custom-name"]["policy"]["retries"] == 0
