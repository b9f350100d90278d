"""The Queues API and the HTTP answer to refused tasks: 429 with Retry-After, GET/PATCH /queues with
validation, 404 for an unknown queue, read-only principals refused, every change audited."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import BackgroundTasks, FastAPI

from taskflow import QueueConfig, TaskAdmin, TaskManager
from tests.helpers import serve, wait_until
from tests.web.test_auth import COOKIE_NAME, SECRET, client_for, cookie, login

READ = "r" * 24
WRITE = "w" * 24


def make_app(*, admin: bool = True, **options: Any) -> tuple[FastAPI, TaskManager, anyio.Event]:
    tm = TaskManager(queues={"emails": QueueConfig(concurrency=1, max_size=2)}, config=False)
    app = FastAPI()
    if admin:
        TaskAdmin(app, tm, auto_install=True, **options)
    else:
        tm.init_app(app)
        tm.install(app)
    release = anyio.Event()

    @tm.task(queue="emails")
    async def send(to: str) -> None:
        await release.wait()

    @app.post("/send/{to}")
    async def send_route(to: str, background_tasks: BackgroundTasks) -> Any:
        return {"task_id": background_tasks.add_task(send, to)}

    @app.get("/healthz")
    async def healthz() -> Any:
        return {"ok": True}

    return app, tm, release


async def test_a_refused_task_is_answered_429_with_retry_after() -> None:
    """Once the queue's running slot and its max_size are taken, the route answers 429 with Retry-After
    and the rejected task's id; the app keeps answering, and the rejected record is in the API."""
    for admin in (True, False):  # TaskAdmin, and init_app + install without the admin API
        app, tm, release = make_app(admin=admin)
        async with serve(app) as client:
            accepted = [await client.post(f"/send/{i}") for i in range(3)]
            await wait_until(lambda tm=tm: tm.queue_stats()[0]["running"] == 1)
            refused = await client.post("/send/x")
            health = await client.get("/healthz")
            release.set()
        assert [r.status_code for r in accepted] == [200, 200, 200], accepted[-1].text
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        body = refused.json()
        assert body["queue"] == "emails" and "full" in body["detail"]
        assert tm.get(body["task_id"]).status.value == "rejected"
        assert health.status_code == 200


async def test_get_and_patch_queues_change_only_the_given_limits() -> None:
    """GET lists the queues; PATCH changes the limits given (null = no limit) and leaves the others."""
    app, _, release = make_app()
    async with serve(app) as client:
        listed = (await client.get("/tasks/queues")).json()
        patched = await client.patch("/tasks/queues/emails", json={"concurrency": 4})
        unlimited = await client.patch("/tasks/queues/emails", json={"max_size": None})
        audit = (await client.get("/tasks/audit")).json()
        release.set()
    assert listed == [
        {"name": "emails", "concurrency": 1, "max_size": 2, "pending": 0, "running": 0, "finished": 0,
         "rejected": 0},
    ]  # fmt: skip
    assert patched.status_code == 200
    assert patched.json()["concurrency"] == 4 and patched.json()["max_size"] == 2
    assert unlimited.json()["max_size"] is None and unlimited.json()["concurrency"] == 4
    assert [(e["action"], e["target"], e["outcome"]) for e in audit[:2]] == [
        ("update_queue", "emails", "ok"), ("update_queue", "emails", "ok"),
    ]  # fmt: skip
    assert "max_size=none" in audit[0]["detail"]


async def test_bad_patches_are_4xx_json_never_500() -> None:
    """Bad bodies are 400 with a clear message, an unknown queue 404; each refusal is audited."""
    app, tm, release = make_app()
    bodies: list[tuple[str, Any]] = [
        ("emails", b"not json"),
        ("emails", b"[1, 2]"),
        ("emails", b"{}"),
        ("emails", b'{"concurrency": 0}'),
        ("emails", b'{"concurrency": "4"}'),
        ("emails", b'{"concurrency": true}'),
        ("emails", b'{"max_size": 1.5}'),
        ("emails", b'{"workers": 3}'),
        ("emails", b'{"concurrency": 1' + b" " * 2000 + b"}"),
        ("nope", b'{"concurrency": 2}'),
    ]
    async with serve(app) as client:
        answers = [await client.patch(f"/tasks/queues/{name}", content=body) for name, body in bodies]
        long_name = await client.patch("/tasks/queues/" + "x" * 200, json={"concurrency": 2})
        audit = (await client.get("/tasks/audit")).json()
        release.set()
    assert [a.status_code for a in answers] == [400] * 9 + [404]
    assert all(isinstance(a.json()["detail"], str) and a.json()["detail"] for a in answers)
    assert "positive integer" in answers[3].json()["detail"] and "workers" in answers[7].json()["detail"]
    assert "no queue named 'nope'" in answers[-1].json()["detail"]
    assert long_name.status_code == 422
    assert tm.queue_stats()[0]["concurrency"] == 1  # nothing changed
    assert sum(e["action"] == "update_queue" for e in audit) == 10


async def test_read_only_principals_see_queues_but_cannot_resize() -> None:
    """A read-only user or token gets GET /queues, and 403 on PATCH; a write token may resize."""
    app, tm, release = make_app(
        auth=[("admin", "pw"), ("viewer", "pw")], secret_key=SECRET, read_only_users=["viewer"],
        api_tokens={"r": (READ, "read"), "w": (WRITE, "write")},
    )  # fmt: skip
    async with client_for(app) as client:
        viewer = (await login(client, username="viewer", password="pw")).cookies[COOKIE_NAME]
        client.cookies.clear()  # each request below says who it is
        seen = await client.get("/tasks/queues", headers=cookie(viewer))
        refused = [
            await client.patch("/tasks/queues/emails", json={"concurrency": 5}, headers=cookie(viewer)),
            await client.patch(
                "/tasks/queues/emails", json={"concurrency": 5}, headers={"authorization": f"Bearer {READ}"}
            ),
            await client.get("/tasks/queues"),  # no credentials at all
        ]
        allowed = await client.patch(
            "/tasks/queues/emails", json={"concurrency": 5}, headers={"authorization": f"Bearer {WRITE}"}
        )
        release.set()
    assert seen.status_code == 200 and seen.json()[0]["name"] == "emails"
    assert [r.status_code for r in refused] == [403, 403, 401]
    assert allowed.status_code == 200 and tm.queue_stats()[0]["concurrency"] == 5
