"""SqliteStore's write path: a live task this connection committed gets only its changing columns updated.

These pin what that shortcut must never change: whatever a write carries is what `get()` and `query()`
return, tags removed or changed included, after a reopen, and when another connection deleted the row.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from taskflow._models import AttemptRecord, TaskRecord, TaskStatus
from taskflow.stores import SqliteStore, _sqlite_ops
from taskflow.stores._common import utc_text

pytestmark = pytest.mark.anyio

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
OWNER = "owner-1"


def rec(task_id: str = "t1", **fields: object) -> TaskRecord:
    fields.setdefault("status", TaskStatus.PENDING)
    fields.setdefault("created_at", T0)
    fields.setdefault("args", (1, [2, 3]))
    fields.setdefault("kwargs", {"k": "v"})
    return TaskRecord(task_id=task_id, func_name="job", **fields)  # type: ignore[arg-type]


def running(record: TaskRecord) -> TaskRecord:
    start = T0 + timedelta(seconds=1)
    return dataclasses.replace(
        record, status=TaskStatus.RUNNING, start_time=start, attempts=[AttemptRecord(1, start)]
    )


def succeeded(record: TaskRecord) -> TaskRecord:
    assert record.start_time is not None
    end = record.start_time + timedelta(seconds=1)
    attempts = [dataclasses.replace(a, end_time=end) for a in record.attempts]
    return dataclasses.replace(
        record, status=TaskStatus.SUCCESS, end_time=end, attempts=attempts, logs=["done"]
    )


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = SqliteStore(tmp_path / "tasks.db")
    await s.open()
    yield s
    await s.close()


async def tagged(store: SqliteStore, key: str, value: str) -> list[str]:
    return [r.task_id for r in (await store.query(tag=(key, value))).records]


async def test_each_state_of_a_task_is_stored_whole(store: SqliteStore) -> None:
    """PENDING, RUNNING, then SUCCESS of one task: get() returns each state exactly as written."""
    pending = rec()
    for state in (pending, running(pending), succeeded(running(pending))):
        await store.write([state], owner=OWNER, requeue_ids=frozenset({"t1"}))
        assert await store.get("t1") == state
    assert (await store.counts())[TaskStatus.SUCCESS] == 1
    assert [r.task_id for r in (await store.query(statuses=frozenset({TaskStatus.SUCCESS}))).records] == [
        "t1"
    ]
    assert (await store.query(statuses=frozenset({TaskStatus.PENDING}))).records == []


async def test_a_record_whose_tags_were_removed_is_stored_without_them(store: SqliteStore) -> None:
    """Tags written with a live task, then removed: neither the record nor a tag query keeps them."""
    first = rec(tags={"team": "a"})
    await store.write([first], owner=OWNER)
    assert await tagged(store, "team", "a") == ["t1"]
    untagged = dataclasses.replace(running(first), tags={})
    await store.write([untagged], owner=OWNER)
    got = await store.get("t1")
    assert got is not None and got.tags == {} and got.status is TaskStatus.RUNNING
    assert await tagged(store, "team", "a") == []


async def test_changed_tags_replace_the_old_ones(store: SqliteStore) -> None:
    """A live task's tags changed between two writes: only the new ones are stored and queryable."""
    first = rec(tags={"team": "a"})
    await store.write([first], owner=OWNER)
    await store.write([dataclasses.replace(first, tags={"team": "b", "env": "x"})], owner=OWNER)
    got = await store.get("t1")
    assert got is not None and got.tags == {"team": "b", "env": "x"}
    assert (await tagged(store, "team", "a"), await tagged(store, "team", "b")) == ([], ["t1"])


async def test_changed_fixed_fields_are_stored(store: SqliteStore) -> None:
    """New args, kwargs values, key, payload, func_name or created_at of a live task are all written."""
    first = rec()
    await store.write([first], owner=OWNER)
    changes: list[dict[str, object]] = [
        {"args": (1, [2, 3])},  # an equal tuple, but another object: written again
        {"args": (9,)},
        {"kwargs": {"k": "w"}},
        {"kwargs": {"k": "v", "more": 1}},
        {"idempotency_key": "key-1"},
        {"encrypted_payload": b"\x00\x01"},
        {"func_name": "other"},
        {"created_at": T0 + timedelta(hours=1)},
    ]
    current = first
    for change in changes:
        current = dataclasses.replace(current, **change)  # type: ignore[arg-type]
        await store.write([current], owner=OWNER)
        assert await store.get("t1") == current, change


async def test_owner_and_requeue_follow_every_write(store: SqliteStore, tmp_path: Path) -> None:
    """The changing columns include owner and the requeue flag."""
    first = rec()
    await store.write([first], owner="a", requeue_ids=frozenset({"t1"}))
    await store.write([running(first)], owner="b")
    conn = sqlite3.connect(tmp_path / "tasks.db")
    try:
        row = conn.execute("SELECT owner, requeue FROM taskflow_tasks WHERE task_id = 't1'").fetchone()
    finally:
        conn.close()
    assert row == ("b", 0)


async def test_a_row_deleted_by_another_connection_is_written_whole(
    store: SqliteStore, tmp_path: Path
) -> None:
    """The next state of a task whose row vanished behind this connection's back recreates the whole row."""
    first = rec(tags={"team": "a"})
    await store.write([first, rec("t2")], owner=OWNER)
    conn = sqlite3.connect(tmp_path / "tasks.db")
    try:
        with conn:
            conn.execute("DELETE FROM taskflow_tasks WHERE task_id = 't1'")
            conn.execute("DELETE FROM taskflow_tags WHERE task_id = 't1'")
    finally:
        conn.close()
    later = running(first)
    await store.write([later, running(rec("t2"))], owner=OWNER)
    assert await store.get("t1") == later
    assert await store.get("t2") == running(rec("t2"))
    assert await tagged(store, "team", "a") == ["t1"]


async def test_a_row_gone_from_this_connection_is_written_whole(store: SqliteStore) -> None:
    """Belt and braces: a remembered row that vanished through this very connection is recreated whole."""
    first = rec(tags={"team": "a"})
    await store.write([first], owner=OWNER)
    await store._call(_sqlite_ops.execute, "DELETE FROM taskflow_tasks WHERE task_id = ?", ("t1",))
    await store.write([running(first)], owner=OWNER)
    assert await store.get("t1") == running(first)


async def test_a_reopened_store_writes_every_state(tmp_path: Path) -> None:
    """Close and reopen between the states of a task (and write it through a second handle): all stored."""
    path = tmp_path / "tasks.db"
    store = SqliteStore(path)
    first = rec(tags={"team": "a"})
    await store.open()
    await store.write([first], owner=OWNER)
    await store.close()
    other = SqliteStore(path)
    await other.open()
    await other.write([dataclasses.replace(running(first), tags={})], owner=OWNER)
    await other.close()
    await store.open()
    try:
        final = succeeded(running(first))  # tags back
        await store.write([final], owner=OWNER)
        assert await store.get("t1") == final
        assert await tagged(store, "team", "a") == ["t1"]
    finally:
        await store.close()


async def test_a_write_after_another_connection_wrote_the_task_is_whole(tmp_path: Path) -> None:
    """Handle A writes a task, handle B rewrites it with other tags and args, A writes its next state:
    the record is A's last write in full (A cannot assume the row still holds what it wrote)."""
    path = tmp_path / "tasks.db"
    a, b = SqliteStore(path), SqliteStore(path)
    await a.open()
    await b.open()
    try:
        first = rec(tags={"team": "a"})
        await a.write([first], owner=OWNER)
        await b.write([dataclasses.replace(first, tags={}, args=(7,))], owner=OWNER)
        await a.write([running(first)], owner=OWNER)
        assert await b.get("t1") == running(first)
        assert await tagged(b, "team", "a") == ["t1"]
    finally:
        await a.close()
        await b.close()


async def test_a_task_listed_twice_in_one_write_is_stored_in_its_last_state(store: SqliteStore) -> None:
    """Duplicates in one batch: the last one wins, whichever write path each would take."""
    first = rec(tags={"team": "a"})
    await store.write([first], owner=OWNER)
    retagged = dataclasses.replace(running(first), tags={"team": "b"})
    await store.write([retagged, succeeded(running(first))], owner=OWNER)
    assert await store.get("t1") == succeeded(running(first))
    assert await tagged(store, "team", "b") == []


async def test_a_failed_write_leaves_the_store_and_later_writes_intact(store: SqliteStore) -> None:
    """Unencodable args in a batch: nothing of it is written, and the next write of the task is whole."""
    first = rec()
    await store.write([first], owner=OWNER)
    with pytest.raises(TypeError):
        await store.write([running(first), rec("bad", args=(object(),))], owner=OWNER)
    assert await store.get("t1") == first and await store.get("bad") is None
    await store.write([running(first)], owner=OWNER)
    assert await store.get("t1") == running(first)


async def test_mutated_argument_object_is_kept_as_first_written(store: SqliteStore) -> None:
    """Arguments are the call as made: a list mutated in place after the first write is not re-read
    (a task's body may be changing it, on another thread, while the store writes)."""
    first = rec(args=([1],))
    await store.write([first], owner=OWNER)
    first.args[0].append(2)
    await store.write([running(first)], owner=OWNER)
    got = await store.get("t1")
    assert got is not None and got.args == ([1],) and got.status is TaskStatus.RUNNING


async def test_terminal_tasks_are_forgotten_and_the_memory_is_bounded(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only live tasks are remembered, at most WRITTEN_LIMIT of them (the oldest go first)."""
    monkeypatch.setattr(_sqlite_ops, "WRITTEN_LIMIT", 3)
    live = [rec(f"t{i}") for i in range(5)]
    await store.write(live, owner=OWNER)
    assert list(store._written.fixed) == ["t2", "t3", "t4"]
    await store.write([succeeded(running(live[3])), running(live[0])], owner=OWNER)
    assert list(store._written.fixed) == ["t2", "t4", "t0"]
    await store.write([succeeded(running(rec("done")))], owner=OWNER)  # terminal at its first write
    assert list(store._written.fixed) == ["t2", "t4", "t0"]
    await store.write([running(r) for r in live], owner=OWNER)  # forgotten ones are written whole again
    for r in live:
        assert await store.get(r.task_id) == running(r)
    await store.close()
    assert store._written.fixed == {}


async def test_attempts_are_stored_with_their_own_times_and_errors(store: SqliteStore) -> None:
    """Attempt times that are not the record's start/end, and error texts JSON must escape, round-trip."""
    t1, t2, t3 = (T0 + timedelta(seconds=s) for s in (1, 2, 3))
    attempts = [
        AttemptRecord(1, t1, t2, 'bad "quote"\n\\ é \x00'),
        AttemptRecord(2, t2.astimezone(timezone(timedelta(hours=2))), None, None),
        AttemptRecord(3, t3, t3, None),
    ]
    record = rec(status=TaskStatus.FAILED, start_time=t1, end_time=t3, attempts=attempts, retries_used=2)
    await store.write([record], owner=OWNER)
    got = await store.get("t1")
    assert got is not None and got.attempts == attempts


def test_utc_text_has_one_fixed_shape() -> None:
    """Whole seconds keep their microseconds, other offsets and naive times become UTC."""
    assert utc_text(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2024-01-02T03:04:05.000000+00:00"
    assert utc_text(datetime(2024, 1, 2, 3, 4, 5, 7, tzinfo=UTC)) == "2024-01-02T03:04:05.000007+00:00"
    plus2 = timezone(timedelta(hours=2))
    assert utc_text(datetime(2024, 1, 2, 3, 4, 5, tzinfo=plus2)) == "2024-01-02T01:04:05.000000+00:00"
    assert utc_text(datetime(2024, 1, 2, 3, 4, 5, 1)) == "2024-01-02T03:04:05.000001+00:00"
