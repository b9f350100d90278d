"""`GET /tasks/supervision`: configured policies with their sources; actors with state, restarts, error."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from supervisors.testing import FakeClock
from taskflow import TaskAdmin, TaskManager
from tests.helpers import serve, wait_until


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
