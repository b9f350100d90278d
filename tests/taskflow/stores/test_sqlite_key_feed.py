"""`SqliteStore.key_changes`: the claims and releases of idempotency keys other handles commit to the file."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import anyio
import pytest

from taskflow import TaskRecord, TaskStatus
from taskflow.stores import SqliteStore
from taskflow.stores._sqlite_schema import KEY_LOG_LIMIT

pytestmark = pytest.mark.anyio


def keyed(task_id: str, key: str, status: TaskStatus) -> TaskRecord:
    """A record of `task_id` holding (or asking for) `key`."""
    return TaskRecord(task_id=task_id, func_name="charge", status=status, idempotency_key=key)


async def test_claims_and_releases_reach_another_handle_in_commit_order(
    anyio_backend: str, tmp_path: Path
) -> None:
    """Claims, a holder's failure (a release) and a re-claim arrive in order; a non-holder's do not."""
    async with SqliteStore(tmp_path / "k.db") as writer, SqliteStore(tmp_path / "k.db") as reader:
        assert await writer.claim_idempotency_key("before", "t0") is None  # before the feed: not replayed
        await writer.write([keyed("t1", "k", TaskStatus.PENDING)], owner="a")
        seen: list[tuple[str, str | None]] = []
        live = anyio.Event()

        async def follow() -> None:
            async for change in reader.key_changes(subscribed=live.set):
                seen.append(change)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(follow)
                await live.wait()
                assert await writer.claim_idempotency_key("k", "t1") is None
                assert await writer.claim_idempotency_key("k", "t2") == "t1"  # refused: nothing logged
                # t2 (a duplicate that never held the key) ends cancelled: the key stays t1's.
                await writer.write([keyed("t2", "k", TaskStatus.CANCELLED)], owner="a")
                await writer.write([keyed("t1", "k", TaskStatus.FAILED)], owner="a")
                await writer.write([keyed("t1", "k", TaskStatus.FAILED)], owner="a")  # no second release
                assert await writer.claim_idempotency_key("k", "t3") is None
                # A first write that is already a failure (its states coalesced) releases too.
                await writer.write([keyed("t3", "k", TaskStatus.FAILED)], owner="a")
                expected = [("k", "t1"), ("k", None), ("k", "t3"), ("k", None)]
                while len(seen) < len(expected):
                    await anyio.sleep(0.05)
                tg.cancel_scope.cancel()
        assert seen == expected


async def test_the_key_log_keeps_its_newest_rows(anyio_backend: str, tmp_path: Path) -> None:
    """Past KEY_LOG_LIMIT claims, the oldest log rows are deleted, so the log stays bounded."""
    path = tmp_path / "k.db"
    async with SqliteStore(path):
        pass  # creates the schema
    claims = KEY_LOG_LIMIT + 5
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executemany(
            "INSERT INTO taskflow_idempotency VALUES (?, ?)", [(f"k{i}", f"t{i}") for i in range(claims)]
        )
        rows = conn.execute("SELECT count(*), min(seq), max(seq) FROM taskflow_key_log").fetchone()
    assert rows == (KEY_LOG_LIMIT, claims - KEY_LOG_LIMIT + 1, claims)


async def test_releases_are_logged_without_per_row_triggers(anyio_backend: str, tmp_path: Path) -> None:
    """The write logs a keyed record's release once, with no trigger firing on every task's every write."""
    path = tmp_path / "k.db"
    async with SqliteStore(path) as store:
        assert await store.claim_idempotency_key("k", "t1") is None
        await store.write([keyed("t1", "k", TaskStatus.PENDING)], owner="a")  # written whole
        await store.write([keyed("t1", "k", TaskStatus.RUNNING)], owner="a")  # only its changing columns
        await store.write([keyed("t1", "k", TaskStatus.FAILED)], owner="a")  # the same, and a release
        await store.write([keyed("t1", "k", TaskStatus.FAILED)], owner="a")  # no second release
    with closing(sqlite3.connect(path)) as conn:
        triggers = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        log = conn.execute("SELECT key, holder FROM taskflow_key_log ORDER BY seq").fetchall()
    assert triggers == {"taskflow_key_claimed"}  # claims are rare: their trigger stays
    assert log == [("k", "t1"), ("k", None)]
