"""Deleting a record that holds an idempotency key releases the key on the key feed (`(key, None)`), on
every store with one: other instances mirror the keys, and would otherwise answer a resubmission with the
id of a deleted task."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from taskflow import TaskRecord, TaskStatus
from taskflow.stores import KeyFeedStore, RedisStore, SqliteStore, TaskStore

pytestmark = pytest.mark.anyio

_T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def done(task_id: str, key: str, status: TaskStatus, minute: int) -> TaskRecord:
    """A finished record holding `key`, ended `minute` minutes after _T0."""
    end = _T0 + timedelta(minutes=minute)
    return TaskRecord(
        task_id=task_id, func_name="charge", status=status, idempotency_key=key, created_at=end,
        start_time=end, end_time=end,
    )  # fmt: skip


@asynccontextmanager
async def two_handles(kind: str, tmp_path: Path) -> AsyncIterator[tuple[TaskStore, TaskStore]]:
    """A writer and a reader on one SQLite file or one Redis prefix."""
    if kind == "sqlite":
        async with SqliteStore(tmp_path / "k.db") as writer, SqliteStore(tmp_path / "k.db") as reader:
            yield writer, reader
        return
    pytest.importorskip("redis")
    from tests.redis_service import REDIS_URL, redis_prefix

    with redis_prefix() as prefix:
        handles = RedisStore(REDIS_URL, prefix=prefix), RedisStore(REDIS_URL, prefix=prefix)
        async with handles[0] as writer, handles[1] as reader:
            yield writer, reader


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("redis", marks=pytest.mark.services)])
async def test_deleting_a_holder_releases_its_key_on_the_feed(
    anyio_backend: str, kind: str, tmp_path: Path
) -> None:
    """delete() and delete_before() each release the keys of the holders they delete, and only those."""
    async with two_handles(kind, tmp_path) as (writer, reader):
        assert isinstance(reader, KeyFeedStore)
        for task_id, key in (("t1", "k1"), ("t2", "k2"), ("t3", "k3")):
            assert await writer.claim_idempotency_key(key, task_id) is None
        await writer.write(
            [done("t1", "k1", TaskStatus.SUCCESS, 1), done("t2", "k2", TaskStatus.SUCCESS, 2),
             done("t3", "k3", TaskStatus.SUCCESS, 30)],
            owner="a",
        )  # fmt: skip
        seen: list[tuple[str, str | None]] = []
        live = anyio.Event()

        async def follow(changes: Callable[..., AsyncIterator[tuple[str, str | None]]]) -> None:
            async for change in changes(subscribed=live.set):
                seen.append(change)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(follow, reader.key_changes)
                await live.wait()
                assert await writer.delete(["t1"]) == 1
                assert await writer.delete_before(_T0 + timedelta(minutes=10)) == 1  # t2, not t3
                while len(seen) < 2:
                    await anyio.sleep(0.05)
                tg.cancel_scope.cancel()
        assert seen == [("k1", None), ("k2", None)]
        # The store itself let go of them: another task may take each key now.
        assert await writer.claim_idempotency_key("k1", "t9") is None
        assert await writer.claim_idempotency_key("k3", "t9") == "t3"
