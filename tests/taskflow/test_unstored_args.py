"""Arguments the store cannot encode: a task that is not persisted runs with them, its history shows marked
display forms that nothing re-runs, and a persist=True task is refused at add_task."""

from __future__ import annotations

import io
import sqlite3
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from cryptography.fernet import Fernet
from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.testclient import TestClient
from starlette.datastructures import UploadFile

from taskflow import InvalidTaskState, TaskAdmin, TaskManager, TaskRecord, TaskStatus, UnstoredArgument
from taskflow._codec import decode_call
from taskflow._unstored import DISPLAY_LIMIT, unstored_call
from taskflow.stores import BatchWriter, MemoryStore, SqliteStore
from tests.helpers import serve, wait_finished


class Session:
    """Stands for a database session or a client object: no JSON form, a repr showing a secret."""

    def __init__(self, secret: str = "hunter2") -> None:
        self.secret = secret

    def __repr__(self) -> str:
        return f"Session(secret={self.secret!r})"


SESSION = f"{__name__}.Session"


def stored_call(db: Path, task_id: str) -> tuple[str, int]:
    """The raw `call` column and `requeue` flag of one task in a SQLite store file."""
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT call, requeue FROM taskflow_tasks WHERE task_id = ?", (task_id,)
        ).fetchone()
    assert row is not None, f"{task_id} is not in the store"
    return str(row[0]), int(row[1])


def upload_app(tm: TaskManager, seen: list[Any], *, display_func_args: bool = True) -> FastAPI:
    """A route handing an UploadFile and a session object to a task that is not persisted."""
    app = FastAPI()
    TaskAdmin(app, tm, auto_install=True, display_func_args=display_func_args)

    @tm.task()
    async def ingest(upload: UploadFile, *, session: Session, rows: int) -> None:
        seen.append((upload, session, rows))
        if rows < 1:
            raise ValueError("no rows")

    @tm.task(persist=True)
    async def durable_ingest(upload: UploadFile) -> None:
        seen.append(upload)

    @app.post("/upload")
    async def upload(request: Request, background_tasks: BackgroundTasks, rows: int = 3) -> Any:
        file = UploadFile(io.BytesIO(await request.body()), filename="report.csv")
        session = Session()
        app.state.sent = (file, session)
        return {"task_id": background_tasks.add_task(ingest, file, session=session, rows=rows)}

    @app.post("/upload-durable")
    async def upload_durable(request: Request, background_tasks: BackgroundTasks) -> Any:
        file = UploadFile(io.BytesIO(await request.body()), filename="report.csv")
        return {"task_id": background_tasks.add_task(durable_ingest, file)}

    return app


def poll(client: TestClient, task_id: str, status: str) -> dict[str, Any]:
    """GET the task until it reaches `status` (bounded in time)."""
    deadline = time.monotonic() + 10
    while True:
        body: dict[str, Any] = client.get(f"/tasks/{task_id}").json()
        if body["status"] == status or time.monotonic() > deadline:
            return body
        time.sleep(0.01)


@pytest.mark.parametrize("requeue_pending", [False, True], ids=["plain", "requeue_pending"])
def test_route_with_an_upload_and_a_session_runs_with_the_real_objects(
    anyio_backend: str, tmp_path: Path, requeue_pending: bool
) -> None:
    """With a SQLite store, a non-persist task given an UploadFile and a session answers 200 and runs with
    the very objects; its stored call holds marked display forms (the encodable argument as it is)."""
    db = tmp_path / "tasks.db"
    seen: list[Any] = []
    tm = TaskManager(snapshot_db=str(db), requeue_pending=requeue_pending)
    app = upload_app(tm, seen)
    with TestClient(app, backend=anyio_backend) as client:
        response = client.post("/upload", content=b"a,b\n1,2\n")
        assert response.status_code == 200
        task_id = response.json()["task_id"]
        body = poll(client, task_id, "success")
    assert body["status"] == "success"
    file, session = app.state.sent
    assert len(seen) == 1 and seen[0][0] is file and seen[0][1] is session and seen[0][2] == 3
    assert body["args"] == [f"<not stored: {file!r}>"]
    assert body["kwargs"] == {"session": "<not stored: Session(secret='hunter2')>", "rows": "3"}
    call, requeue = stored_call(db, task_id)
    assert '"__tf__":"unstored"' in call and "report.csv" in call and requeue == 0


def test_persist_task_with_an_upload_is_refused_at_add_task(anyio_backend: str, tmp_path: Path) -> None:
    """A persist=True task with an argument the store cannot encode is refused with a TypeError naming the
    argument, register_type and why; nothing runs and nothing is stored."""
    seen: list[Any] = []
    tm = TaskManager(snapshot_db=str(tmp_path / "tasks.db"))
    app = upload_app(tm, seen)
    with TestClient(app, backend=anyio_backend) as client:
        with pytest.raises(TypeError) as info:
            client.post("/upload-durable", content=b"x")
        assert client.get("/tasks").json() == []
    message = str(info.value)
    assert "positional argument 0" in message and "UploadFile" in message
    assert "register_type" in message and "persist=True" in message
    assert seen == []


async def test_after_a_restart_the_record_reads_back_and_is_never_rerun(tmp_path: Path) -> None:
    """A finished non-persist task with unstorable arguments reads back from SQLite after a restart, shows
    its display forms in the API, and retry refuses it (its arguments were never stored)."""
    db = tmp_path / "tasks.db"
    seen: list[Any] = []
    first = TaskManager(snapshot_db=str(db))
    async with serve(upload_app(first, seen)) as client:
        task_id = (await client.post("/upload?rows=0", content=b"data")).json()["task_id"]
        await wait_finished(first, [task_id])

    second = TaskManager(snapshot_db=str(db))
    async with serve(upload_app(second, seen)) as client:
        body = (await client.get(f"/tasks/{task_id}")).json()
        record = await second.find(task_id)
        retried = await client.post(f"/tasks/{task_id}/retry")
        with pytest.raises(InvalidTaskState, match="cannot be re-run"):
            second.actions.resubmit(task_id, record=record)
    assert body["status"] == "failed" and body["args"] == [
        "<not stored: UploadFile(filename='report.csv', size=None, headers=Headers({}))>"
    ]
    assert record.kwargs == {"session": UnstoredArgument(SESSION, "Session(secret='hunter2')"), "rows": 0}
    assert retried.status_code == 400 and "not stored" in retried.json()["detail"]
    assert len(seen) == 1


async def test_requeue_pending_runs_the_task_but_never_flags_it_for_requeue(tmp_path: Path) -> None:
    """With requeue_pending=True, a non-persist task with an unstorable argument still runs with it; its
    stored record is not flagged for requeue while it waits, and a clean shutdown marks it INTERRUPTED
    (not kept to re-run with display forms)."""
    db = tmp_path / "tasks.db"
    ran: list[Any] = []
    tm = TaskManager(snapshot_db=str(db), requeue_pending=True)

    @tm.task()
    async def job(session: Session) -> None:
        ran.append(session)

    session = Session()
    async with tm.running():
        done, _ = tm.launcher.submit(job, (session,), {})
        await tm.launcher.start(done)
        await wait_finished(tm, [done])
        waiting, _ = tm.launcher.submit(job, (Session("other"),), {})  # never dispatched: PENDING at shutdown
        await tm.query_history()  # commits what is queued before reading the store
        assert stored_call(db, waiting)[1] == 0
    assert ran == [session] and tm.get(done).status is TaskStatus.SUCCESS
    assert tm.get(waiting).status is TaskStatus.INTERRUPTED
    assert tm.get(waiting).status_reason == "shutdown"

    again = TaskManager(snapshot_db=str(db), requeue_pending=True)
    again.task()(job)
    async with again.running():
        record = await again.find(waiting)
    assert record.status is TaskStatus.INTERRUPTED and ran == [session]


async def test_after_a_crash_a_waiting_task_with_display_forms_is_interrupted_saying_why(
    tmp_path: Path,
) -> None:
    """A PENDING record whose call is display forms, left by a lost instance, is marked INTERRUPTED with a
    reason saying it cannot be re-run, even when its store flags it for requeue; it never runs."""
    db = tmp_path / "tasks.db"
    ran: list[Any] = []

    async def job(session: Session) -> None:
        ran.append(session)

    def pending(task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> TaskRecord:
        call = unstored_call(args, kwargs, redact=False)
        return TaskRecord(task_id, "job", TaskStatus.PENDING, args=call, kwargs=kwargs)

    dead = SqliteStore(db)  # what a killed instance left: written as it, never heartbeating again
    await dead.open()
    writer = BatchWriter(dead, owner="dead-instance")
    writer.enqueue(pending("via-writer", (Session(),), {}), requeue=True)  # as requeue_pending asks
    with anyio.fail_after(10):  # a writer that cannot encode the call retries forever
        await writer.flush()
    flagged = pending("flagged", (), {"session": Session()})
    shown_args, shown_kwargs = flagged.args.stored  # type: ignore[attr-defined]
    flagged.args, flagged.kwargs = shown_args, shown_kwargs  # a store that kept the flag regardless:
    await dead.write([flagged], owner="dead-instance", requeue_ids=frozenset({"flagged"}))
    await dead.close()
    assert stored_call(db, "via-writer")[1] == 0 and stored_call(db, "flagged")[1] == 1

    survivor = TaskManager(snapshot_db=str(db), requeue_pending=True)
    survivor.task()(job)
    async with survivor.running():
        records = [await survivor.find(i) for i in ("via-writer", "flagged")]
    for record in records:
        assert record.status is TaskStatus.INTERRUPTED
        assert record.status_reason is not None and "cannot be re-run" in record.status_reason
        assert "lost before it ran" in record.status_reason
    assert ran == []


async def test_with_encryption_the_task_runs_and_nothing_of_its_call_is_stored_in_clear(
    tmp_path: Path,
) -> None:
    """Encryption on: a non-persist task with an unencodable argument runs with it; the store and the API
    show only redacted type names, never the repr nor the other arguments' values."""
    db = tmp_path / "tasks.db"
    seen: list[Any] = []
    tm = TaskManager(snapshot_db=str(db), encrypt_args_key=Fernet.generate_key())
    app = upload_app(tm, seen)
    async with serve(app) as client:
        task_id = (await client.post("/upload", content=b"secret-file-body")).json()["task_id"]
        await wait_finished(tm, [task_id])
        body = (await client.get(f"/tasks/{task_id}")).json()
    file, session = app.state.sent
    assert seen == [(file, session, 3)]
    call, _ = stored_call(db, task_id)
    assert "hunter2" not in call and "report.csv" not in call
    redacted = UnstoredArgument("int", None)
    upload_type = UnstoredArgument("starlette.datastructures.UploadFile", None)
    assert decode_call(call) == (
        (upload_type,),
        {"session": UnstoredArgument(SESSION, None), "rows": redacted},
    )
    assert body["kwargs"] == {
        "session": f"<not stored: a {SESSION}, redacted (argument encryption is on)>",
        "rows": "<not stored: a int, redacted (argument encryption is on)>",
    }
    assert "hunter2" not in str(body)


async def test_with_encryption_and_no_store_the_task_still_runs() -> None:
    """Encryption without a store: an unencodable argument no longer breaks add_task for a plain task."""
    tm = TaskManager(encrypt_args_key=Fernet.generate_key())
    ran: list[Any] = []

    @tm.task()
    def job(session: Session) -> None:
        ran.append(session)

    session = Session()
    async with tm.running():
        task_id, _ = tm.launcher.submit(job, (session,), {})
        await tm.launcher.start(task_id)
        await wait_finished(tm, [task_id])
    assert ran == [session] and tm.get(task_id).status is TaskStatus.SUCCESS


def test_unstored_call_keeps_storable_arguments_and_marks_the_others() -> None:
    """Each argument is kept whole or replaced by its display form; redacting replaces all, without repr."""
    session = Session()
    call = unstored_call((1, session), {"when": (2, 3), "s": session}, redact=False)
    assert tuple(call) == (1, session)
    shown = UnstoredArgument(SESSION, "Session(secret='hunter2')")
    assert call.stored == ((1, shown), {"when": (2, 3), "s": shown})
    redacted = unstored_call((1,), {"s": session}, redact=True)
    assert redacted.stored == (
        (UnstoredArgument("int", None),),
        {"s": UnstoredArgument(shown.type_name, None)},
    )


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_each_store_keeps_the_display_forms(kind: str, tmp_path: Path) -> None:
    """The memory store, like SQLite, keeps the task and reads its display forms back."""
    store = MemoryStore() if kind == "memory" else SqliteStore(tmp_path / "t.db")
    tm = TaskManager(snapshot_backend=store)
    ran: list[Any] = []

    @tm.task()
    async def job(session: Session) -> None:
        ran.append(session)

    session = Session()
    async with tm.running():
        task_id, _ = tm.launcher.submit(job, (session,), {})
        await tm.launcher.start(task_id)
        await wait_finished(tm, [task_id])
        await tm.query_history()
        stored = await store.get(task_id)
    assert ran == [session]
    assert stored is not None and stored.args == (UnstoredArgument(SESSION, repr(session)),)


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_display_form_is_shortened_and_survives_a_broken_repr() -> None:
    """A long repr is cut to DISPLAY_LIMIT characters; a failing repr gives a placeholder, not an error."""
    long = Session("x" * 2000)
    call = unstored_call((long, BrokenRepr()), {}, redact=False)
    text = call.stored[0][0].text
    assert text is not None and len(text) == DISPLAY_LIMIT and text.endswith("\u2026")
    assert call.stored[0][1] == UnstoredArgument(
        f"{__name__}.BrokenRepr", f"<{__name__}.BrokenRepr object (its repr() failed)>"
    )
