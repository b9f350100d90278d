"""The schedules' HTTP API: listing with next and last run, pause / resume / run now, one-off cancel, bad
input (4xx JSON), the audit log, and read-only principals refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI

from taskflow import TaskAdmin, TaskManager
from taskflow.stores import SqliteStore
from taskflow.testing import ManualScheduleClock, run_until_idle
from tests.helpers import serve
from tests.web.test_auth import SECRET, client_for

T0 = datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)
READ = "r" * 24


def make_app(tmp_path: Path, **admin: Any) -> tuple[FastAPI, TaskManager, list[str]]:
    clock = ManualScheduleClock(T0)
    tm = TaskManager(snapshot_backend=SqliteStore(tmp_path / "tasks.db"), schedule_clock=clock)
    app = FastAPI()
    TaskAdmin(app, tm, **admin)
    calls: list[str] = []

    @tm.schedule(every=60, name="report")
    async def report() -> None:
        calls.append("report")

    @tm.task(name="remind")
    async def remind(who: str) -> None:
        calls.append(who)

    return app, tm, calls


async def test_list_pause_resume_and_run_now(tmp_path: Path) -> None:
    """GET lists the schedule; run now runs it (its last run then shows); pause and resume are shared
    state; every action is audited."""
    app, tm, calls = make_app(tmp_path)
    async with serve(app) as client:
        listed = (await client.get("/tasks/schedules")).json()
        (item,) = listed["schedules"]
        assert (item["name"], item["trigger"]["expression"], item["paused"]) == ("report", "every 60s", False)
        assert item["next_run"] == "2024-05-01T12:01:00+00:00" and item["last_run"] is None
        ran = await client.post("/tasks/schedules/report/run")
        assert ran.status_code == 200
        await run_until_idle(tm)
        assert calls == ["report"]
        last = (await client.get("/tasks/schedules")).json()["schedules"][0]["last_run"]
        assert (last["task_id"], last["status"], last["trigger"]) == (
            ran.json()["task_id"],
            "success",
            "run_now",
        )
        assert (await client.post("/tasks/schedules/report/pause")).json() == {
            "name": "report",
            "paused": True,
        }
        assert (await client.get("/tasks/schedules")).json()["schedules"][0]["paused"] is True
        assert (await client.post("/tasks/schedules/report/resume")).json()["paused"] is False
        audit = (await client.get("/tasks/audit")).json()
    actions = [entry["action"] for entry in audit[:3]]
    assert actions == ["schedule_resume", "schedule_pause", "schedule_run_now"]


async def test_a_paused_schedule_skips_its_slots(tmp_path: Path) -> None:
    """Paused through the API, the next slot passes without a run and is counted skipped."""
    app, tm, calls = make_app(tmp_path)
    clock = tm.schedule_clock
    assert isinstance(clock, ManualScheduleClock)
    async with serve(app) as client:
        await client.post("/tasks/schedules/report/pause")
        with anyio.fail_after(10):
            while clock.sleepers < 2:
                await anyio.sleep(0.01)
        clock.advance(60)
        with anyio.fail_after(10):
            while (await client.get("/tasks/schedules")).json()["schedules"][0]["skipped"] < 1:
                await anyio.sleep(0.01)
    assert calls == []


async def test_one_offs_are_listed_and_cancelled(tmp_path: Path) -> None:
    """A waiting one-off shows (without its arguments) and its cancel route removes it once."""
    app, tm, _calls = make_app(tmp_path)
    async with serve(app) as client:
        remind = tm.registry.get("remind").func
        key = await tm.schedule_once(remind, "zed-the-secret", delay=timedelta(minutes=5),
                                     run_key="remind-alice")  # fmt: skip
        waiting = (await client.get("/tasks/schedules")).json()["one_offs"]
        assert [(w["run_key"], w["func_name"], w["fire_at"]) for w in waiting] == [
            (key, "remind", "2024-05-01T12:05:00.250000+00:00")
        ]
        assert "zed-the-secret" not in str(waiting)
        assert (await client.post(f"/tasks/schedules/once/{key}/cancel")).status_code == 200
        again = await client.post(f"/tasks/schedules/once/{key}/cancel")
        assert again.status_code == 404 and "remind-alice" in again.json()["detail"]
        assert (await client.get("/tasks/schedules")).json()["one_offs"] == []


async def test_bad_input_answers_4xx_json(tmp_path: Path) -> None:
    """Unknown schedule 404, a run in progress 409, an over-long name 422, a bad limit 422: all JSON."""
    app, tm, _calls = make_app(tmp_path)
    gate = anyio.Event()

    @tm.schedule(every=3600, name="slow")
    async def slow() -> None:
        await gate.wait()

    async with serve(app) as client:
        unknown = await client.post("/tasks/schedules/nope/pause")
        first = await client.post("/tasks/schedules/slow/run")
        busy = await client.post("/tasks/schedules/slow/run")
        long_name = await client.post("/tasks/schedules/" + "x" * 400 + "/run")
        bad_limit = await client.get("/tasks/schedules?limit=0")
        gate.set()
        await run_until_idle(tm)
    assert (unknown.status_code, first.status_code, busy.status_code) == (404, 200, 409)
    assert "nope" in unknown.json()["detail"] and "in progress" in busy.json()["detail"]
    assert (long_name.status_code, bad_limit.status_code) == (422, 422)
    assert all(isinstance(r.json()["detail"], str | list) for r in (long_name, bad_limit))


async def test_actions_are_refused_to_read_only_principals(tmp_path: Path) -> None:
    """A read-only token may list schedules, not pause, resume, run or cancel them."""
    app, _tm, calls = make_app(tmp_path, auth=[("admin", "pw")], secret_key=SECRET,
                               api_tokens={"g": (READ, "read")})  # fmt: skip
    async with client_for(app) as client:
        read = {"authorization": f"Bearer {READ}"}
        assert (await client.get("/tasks/schedules", headers=read)).status_code == 200
        refused = [
            await client.post(f"/tasks/schedules/report/{action}", headers=read)
            for action in ("pause", "resume", "run")
        ]
        refused.append(await client.post("/tasks/schedules/once/k/cancel", headers=read))
        anonymous = await client.get("/tasks/schedules")
    assert [r.status_code for r in refused] == [403, 403, 403, 403]
    assert anonymous.status_code == 401 and calls == []
