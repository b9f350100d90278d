"""Checkpoints: a task saves its progress, keeps it through a shutdown, and resumes from it after restart."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest
from cryptography.fernet import Fernet

from taskflow import TaskContext, TaskManager, TaskStatus, get_task_context
from tests.helpers import wait_finished, wait_until


def _stored_checkpoint(db: Path, task_id: str) -> Any:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT checkpoint FROM taskflow_tasks WHERE task_id = ?", (task_id,)).fetchone()[
            0
        ]
    finally:
        conn.close()


def _make(db: Path, seen: list[Any], gate: anyio.Event | None, **options: Any) -> TaskManager:
    manager = TaskManager(snapshot_db=str(db), shutdown_grace=0, **options)

    @manager.task(persist=True, requeue_on_interrupt=True, name="export")
    async def export(pages: int) -> None:
        context = get_task_context()
        assert context is not None
        start = (context.last_checkpoint or {"page": 0})["page"]
        seen.append(start)
        for page in range(start, pages):
            if page == 3 and gate is not None:
                seen.append("paused")
                await gate.wait()  # the first run stops here: shutdown cancels it
            context.checkpoint({"page": page, "note": "données"})

    manager.export_fn = export  # type: ignore[attr-defined]
    return manager


async def _shutdown_mid_task(manager: TaskManager, pages: int, seen: list[Any]) -> str:
    async with manager.running():
        task_id, _ = manager.launcher.submit(manager.export_fn, (pages,), {})  # type: ignore[attr-defined]
        await manager.launcher.start(task_id)
        await wait_until(lambda: "paused" in seen)
    return task_id


async def test_interrupted_task_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    """Cancelled at shutdown, a requeue_on_interrupt task keeps its last checkpoint in the store; run again
    after the restart, it reads it and resumes there."""
    db = tmp_path / "tasks.db"
    seen: list[Any] = []
    first = _make(db, seen, anyio.Event())
    task_id = await _shutdown_mid_task(first, 6, seen)
    assert first.get(task_id).status is TaskStatus.PENDING
    assert _stored_checkpoint(db, task_id) == '{"page":2,"note":"données"}'

    second = _make(db, seen, None)
    async with second.running():
        (record,) = await wait_finished(second, [task_id])
    assert record.status is TaskStatus.SUCCESS
    assert seen == [0, "paused", 2]  # the second run started from the saved page
    assert _stored_checkpoint(db, task_id) == '{"page":5,"note":"données"}'


async def test_checkpoint_is_encrypted_with_the_arguments(tmp_path: Path) -> None:
    """With encrypt_args_key, the stored checkpoint is a Fernet token, never the JSON; it still resumes."""
    db = tmp_path / "tasks.db"
    key = Fernet.generate_key()
    seen: list[Any] = []
    first = _make(db, seen, anyio.Event(), encrypt_args_key=key)
    task_id = await _shutdown_mid_task(first, 5, seen)
    stored = _stored_checkpoint(db, task_id)
    assert stored.startswith("fernet:") and "page" not in stored and "donn" not in stored
    assert Fernet(key).decrypt(stored.removeprefix("fernet:")) == '{"page":2,"note":"données"}'.encode()

    second = _make(db, seen, None, encrypt_args_key=key)
    async with second.running():
        (record,) = await wait_finished(second, [task_id])
    assert (record.status, seen) == (TaskStatus.SUCCESS, [0, "paused", 2])


async def test_retries_and_sync_tasks_read_the_checkpoint() -> None:
    """A sync task saves from its worker thread; its retry reads what the failed attempt saved."""
    manager = TaskManager()
    seen: list[Any] = []

    @manager.task(retries=1)
    def count() -> None:
        context = get_task_context()
        assert context is not None
        seen.append(context.last_checkpoint)
        context.checkpoint({"done": context.attempt + 1})
        if context.attempt == 0:
            raise RuntimeError("first attempt fails")

    async with manager.running():
        task_id, _ = manager.launcher.submit(count, (), {})
        await manager.launcher.start(task_id)
        (record,) = await wait_finished(manager, [task_id])
    assert record.status is TaskStatus.SUCCESS
    assert seen == [None, {"done": 1}]
    assert record.checkpoint == '{"done":2}'


async def test_checkpoint_must_be_json() -> None:
    """A state that JSON cannot encode raises TypeError in the task, and the last good one stays."""
    manager = TaskManager()
    errors: list[str] = []

    @manager.task()
    async def bad() -> None:
        context = get_task_context()
        assert context is not None
        context.checkpoint([1])
        for state in ({1, 2}, float("nan")):
            try:
                context.checkpoint(state)
            except TypeError as exc:
                errors.append(str(exc))

    async with manager.running():
        task_id, _ = manager.launcher.submit(bad, (), {})
        await manager.launcher.start(task_id)
        (record,) = await wait_finished(manager, [task_id])
    assert record.checkpoint == "[1]"
    assert len(errors) == 2 and all(e.startswith("a checkpoint must be JSON-encodable") for e in errors)


def test_a_context_made_by_hand_has_no_checkpoint() -> None:
    """TaskContext built outside a task (as in 0.5.0 tests) reads no checkpoint and cannot save one."""
    context = TaskContext("t", "f", 0)
    assert context.last_checkpoint is None
    with pytest.raises(RuntimeError, match="needs the context of a running task"):
        context.checkpoint({"a": 1})
