"""`GET /tasks/supervision`: configured policies with their sources; actors with state, restarts, error."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from supervisors.testing import FakeClock
from taskflow import QueueConfig, TaskAdmin, TaskManager
from tests.helpers import serve, wait_until
from tests.taskflow import process_tasks


def _app() -> tuple[FastAPI, TaskManager]:
    manager = TaskManager(
        clock=FakeClock(),
        config={
            "policies": {
                "emails": {"retries": 2, "retry_on": ["ConnectionError"], "max_concurrency": 4},
                "poller": {"delay": 0.5, "max_restarts": 2},
            }
        },
    )

    @manager.task(policy="emails", retries=5)
    async def send() -> None: ...

    @manager.actor(policy="poller")
    async def poll() -> None:
        raise ConnectionError("feed unreachable")

    app = FastAPI()
    TaskAdmin(app, manager)
    return app, manager


async def test_supervision_lists_policies_and_a_crashing_actor() -> None:
    """An actor that keeps crashing shows as gave_up with its restarts and last error; policies show
    their effective values and sources; a function shows its own policy and its supervisor's group."""
    app, manager = _app()
    async with serve(app) as client:
        await wait_until(lambda: manager.actor_statistics()[0].state == "gave_up")
        body = (await client.get("/tasks/supervision")).json()
    (actor,) = body["actors"]
    assert actor["name"] == "poll" and actor["state"] == "gave_up"
    assert actor["restarts"] == 2 and actor["max_restarts"] == 2
    assert actor["last_error"] == "ConnectionError: feed unreachable"
    assert actor["restart"] == "permanent" and actor["policy"] == "poller"
    policies = {p["name"]: p for p in body["config"]["policies"]}
    assert policies["emails"]["values"]["retry_on"] == "ConnectionError"
    assert policies["emails"]["values"]["max_concurrency"] == 4
    assert policies["emails"]["sources"]["retries"] == "TaskManager(config=...) [policies.emails]"
    assert policies["poller"]["sources"]["retries"] == "default"
    (send,) = [f for f in body["functions"] if f["name"] == "send"]
    assert (send["policy"]["retries"], send["group"]) == (5, "emails")


async def test_supervision_lists_actors_before_the_lifespan() -> None:
    """Without a running lifespan the declared actors are listed as new."""
    app, _ = _app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        body = (await client.get("/tasks/supervision")).json()
    assert [(a["name"], a["state"], a["restarts"]) for a in body["actors"]] == [("poll", "new", 0)]


async def test_functions_show_process_kind_queue_and_priority() -> None:
    """A process task's kind is `process` (not `sync`); a function's queue and priority are listed, a
    schedule's included (`@schedule(queue=, priority=)` declares them on its task)."""
    manager = TaskManager(queues={"mail": QueueConfig(concurrency=1)}, config=False)
    manager.task(executor="process")(process_tasks.pid)

    @manager.task(queue="mail", priority=7)
    async def digest() -> None: ...

    @manager.schedule(every=3600, queue="mail", priority=-2)
    async def nightly() -> None: ...

    @manager.task()
    def plain() -> None: ...

    app = FastAPI()
    TaskAdmin(app, manager)
    async with serve(app) as client:
        body = (await client.get("/tasks/supervision")).json()
    found = {f["name"]: (f["kind"], f["queue"], f["priority"]) for f in body["functions"]}
    assert found == {
        "pid": ("process", None, 0),
        "digest": ("async", "mail", 7),
        "nightly": ("async", "mail", -2),
        "plain": ("sync", None, 0),
    }
