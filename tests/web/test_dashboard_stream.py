"""`GET {p}/dashboard/stream`: in process on both backends, and end to end under a real uvicorn.

httpx's ASGITransport hands the body over only once the app has finished, so the in-process tests end the
stream by stopping the bus; the uvicorn tests read it live, resume it with Last-Event-ID, and check that an
open stream does not hold up the server's shutdown.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

from taskflow import TaskAdmin, TaskManager
from taskflow.stores import MemoryStore, Page
from taskflow.web._dashboard import event_stream
from tests.browser.server import uvicorn_server
from tests.helpers import serve, wait_until
from tests.web.test_dashboard_bus import parse, running_bus


async def test_stream_over_asgi_sends_state_then_task_events() -> None:
    """The stream's headers, its snapshot and the events of a task that ran while it was open."""
    app = FastAPI()
    manager = TaskManager()
    admin = TaskAdmin(app, manager)

    @manager.task()
    async def work() -> None:
        pass

    responses: list[httpx.Response] = []
    async with serve(app) as client:

        async def read() -> None:
            responses.append(await client.get("/tasks/dashboard/stream"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await wait_until(lambda: admin.bus.subscribers == 1)
            task_id, _ = manager.launcher.submit(work, (), {})
            await manager.launcher.start(task_id)
            await wait_until(lambda: manager.get(task_id).status.is_terminal)
            await wait_until(lambda: admin.bus.seq >= 1)
            await anyio.sleep(0.3)  # let the stream pick up the last flush
            admin.bus.close()
    (response,) = responses
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    events = parse(response.text)
    assert events[0]["event"] == "state"
    statuses = [
        e["data"]["status"] for e in events if e["event"] == "task" and e["data"]["task_id"] == task_id
    ]
    assert statuses[-1] == "success"


# ---- end to end, under uvicorn (the server is asyncio-only, so these are plain sync tests) --------------


def read_stream(url: str, into: list[str], **headers: str) -> threading.Thread:
    """Read an SSE stream in a thread, appending chunks to `into` until the server ends it."""

    def run() -> None:
        try:
            with httpx.stream("GET", url, headers=headers, timeout=30) as response:
                into.append(f"HTTP {response.status_code}\n\n")
                for chunk in response.iter_text():
                    into.append(chunk)
        except httpx.TransportError:
            into.append("TRANSPORT ERROR")
        into.append("END")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def wait_for(predicate: Any, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def task_events(chunks: list[str], task_id: str | None = None) -> list[dict[str, Any]]:
    events = [e for e in parse("".join(chunks)) if e.get("event") == "task"]
    return [e for e in events if task_id is None or e["data"]["task_id"] == task_id]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Any]]:
    with uvicorn_server(TASKFLOW_TEST_POLL="0.5") as running:
        yield running


@pytest.mark.slow
def test_live_events_and_resume_with_last_event_id(server: tuple[str, Any]) -> None:
    """A task shows up live; a reconnect with Last-Event-ID replays what was missed, without a snapshot."""
    base, _ = server
    first: list[str] = []
    read_stream(f"{base}/tasks/dashboard/stream", first)
    wait_for(lambda: any("event: state" in c for c in first))
    task_id = httpx.post(f"{base}/run/quick?arg=1").json()["task_id"]
    wait_for(lambda: any(e["data"]["status"] == "success" for e in task_events(first, task_id)))
    last_id = task_events(first, task_id)[-1]["id"]

    missed = httpx.post(f"{base}/run/quick?arg=2").json()["task_id"]
    wait_for(lambda: any(e["data"]["status"] == "success" for e in task_events(first, missed)))
    resumed: list[str] = []
    read_stream(f"{base}/tasks/dashboard/stream", resumed, **{"last-event-id": last_id})
    wait_for(lambda: task_events(resumed, missed))
    wait_for(lambda: any(c.startswith(": keep-alive") for c in resumed))
    assert "event: state" not in "".join(resumed)
    assert task_events(resumed, task_id) == []

    stale: list[str] = []
    read_stream(f"{base}/tasks/dashboard/stream", stale, **{"last-event-id": "0000-1"})
    wait_for(lambda: any("event: state" in c for c in stale))


@pytest.mark.slow
def test_an_open_stream_does_not_hold_up_shutdown() -> None:
    """SIGTERM with a dashboard connected: the stream ends and uvicorn exits promptly (it waits for open
    responses before its lifespan shutdown, so the bus closes on the signal itself)."""
    with uvicorn_server() as (base, proc):
        chunks: list[str] = []
        reader = read_stream(f"{base}/tasks/dashboard/stream", chunks)
        wait_for(lambda: any("event: state" in c for c in chunks))
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=8)
        assert time.monotonic() - started < 5
        reader.join(5)
        assert chunks[-1] == "END"


@pytest.mark.slow
def test_stream_needs_a_session_when_auth_is_on() -> None:
    """With auth, the stream answers 401 without a cookie and streams with one."""
    with uvicorn_server(TASKFLOW_TEST_AUTH="1", TASKFLOW_TEST_SECRET="k") as (base, _):
        assert httpx.get(f"{base}/tasks/dashboard/stream").status_code == 401
        login = httpx.post(
            f"{base}/tasks/auth/login",
            data={"username": "admin", "password": "secret"},
            headers={"origin": base},
        )
        assert login.status_code == 302
        chunks: list[str] = []
        read_stream(
            f"{base}/tasks/dashboard/stream",
            chunks,
            cookie=f"taskflow_token={login.cookies['taskflow_token']}",
        )
        wait_for(lambda: any("event: state" in c for c in chunks))
        state = next(e for e in parse("".join(chunks)) if e.get("event") == "state")
        assert json.dumps(state["data"]["metrics"])


async def test_snapshot_after_a_restart_shows_history_from_the_store(tmp_path: Any) -> None:
    """With a store, the stream's first page comes from it: tasks of a previous run are on the dashboard."""
    db = str(tmp_path / "tasks.db")
    first = TaskManager(snapshot_db=db)

    async def old_job() -> None:
        pass

    async with first.running():
        old_id, _ = first.launcher.submit(old_job, (), {})
        await first.launcher.start(old_id)
        await wait_until(lambda: first.get(old_id).status.is_terminal)

    app = FastAPI()
    manager = TaskManager(snapshot_db=db)
    admin = TaskAdmin(app, manager)
    responses: list[httpx.Response] = []
    async with serve(app) as client:

        async def read() -> None:
            responses.append(await client.get("/tasks/dashboard/stream"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await wait_until(lambda: admin.bus.subscribers == 1)
            admin.bus.close()
    state = parse(responses[0].text)[0]
    assert state["event"] == "state"
    assert [t["task_id"] for t in state["data"]["tasks"]] == [old_id]


class PageThenChangeStore(MemoryStore):
    """A memory store that, once armed, runs `after_page` between reading a page and returning it: a change
    made while the stream's first page is on its way from a (slower) store."""

    def __init__(self) -> None:
        super().__init__()
        self.after_page: Any = None

    async def query(self, **filters: Any) -> Page:
        page = await super().query(**filters)
        hook, self.after_page = self.after_page, None
        if hook is not None:
            await hook()
        return page


async def test_a_change_published_while_the_snapshot_page_is_read_still_reaches_the_client() -> None:
    """A task made and published after the store read the first page but before the snapshot went out is
    sent as a task event: the snapshot's position is taken before the page is fetched, not after."""
    store = PageThenChangeStore()
    manager = TaskManager(snapshot_backend=store)

    async def work() -> None:
        pass

    made: list[str] = []

    async def make_a_task() -> None:
        seq = bus.seq
        task_id, _ = manager.launcher.submit(work, (), {})
        made.append(task_id)
        await wait_until(lambda: bus.seq > seq)  # published to the ring before the snapshot is taken

    async with running_bus(manager) as bus:
        chunks: list[str] = []

        async def consume() -> None:
            async for chunk in event_stream(bus, None, poll_interval=0.05):
                chunks.append(chunk)

        store.after_page = make_a_task
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await wait_until(lambda: bool(made) and any("event: state" in c for c in chunks))
            with anyio.move_on_after(3):
                await wait_until(lambda: any(made[0] in c and "event: task" in c for c in chunks))
            bus.close()
    events = parse("".join(chunks))
    assert events[0]["event"] == "state"
    assert made[0] not in [t["task_id"] for t in events[0]["data"]["tasks"]]  # the page was read before it
    assert [e["data"]["status"] for e in events[1:] if e["data"].get("task_id") == made[0]] == ["pending"]
