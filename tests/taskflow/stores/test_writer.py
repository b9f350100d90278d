"""BatchWriter: group commit, coalescing, batch numbers, retries that never drop, bounded shutdown flush."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

from taskflow._models import TaskRecord, TaskStatus
from taskflow.stores import BatchWriter, MemoryStore, SqliteStore, backoff_delay


class SpyStore(MemoryStore):
    """A memory store that logs each committed write and can hold writes at a gate or fail them."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[list[str]] = []
        self.gate: anyio.Event | None = None
        self.started = anyio.Event()
        self.broken = False
        self.failed = anyio.Event()

    async def write(
        self, records: Sequence[TaskRecord], *, owner: str, requeue_ids: frozenset[str] = frozenset()
    ) -> None:
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.broken:
            self.failed.set()
            raise OSError("disk full")
        await super().write(records, owner=owner, requeue_ids=requeue_ids)
        self.writes.append([r.task_id for r in records])


def rec(task_id: str, status: TaskStatus = TaskStatus.PENDING) -> TaskRecord:
    return TaskRecord(task_id, "job", status)


@pytest.fixture
async def spy() -> SpyStore:
    store = SpyStore()
    await store.open()
    return store


def test_backoff_delay_formula() -> None:
    """backoff_delay doubles from `base` per attempt and stops at `cap`; attempts start at 1."""
    assert [backoff_delay(n, base=0.05, cap=0.3) for n in (1, 2, 3, 4, 5)] == [0.05, 0.1, 0.2, 0.3, 0.3]
    assert backoff_delay(10_000, base=1, cap=7) == 7
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay(0, base=1, cap=1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_batch": 0}, "max_batch"),
        ({"retry_delay": -1}, "retry_delay"),
        ({"max_retry_delay": float("nan")}, "max_retry_delay"),
        ({"shutdown_timeout": float("inf")}, "shutdown_timeout"),
        ({"owner": ""}, "owner"),
    ],
)
def test_rejects_bad_settings(kwargs: dict[str, object], match: str) -> None:
    """Invalid settings raise ValueError naming the setting, at construction."""
    settings: dict[str, object] = {"owner": "i1", **kwargs}
    with pytest.raises(ValueError, match=match):
        BatchWriter(MemoryStore(), **settings)  # type: ignore[arg-type]


def test_enqueue_numbers_batches() -> None:
    """enqueue returns its batch number; a queued record enqueued again stays in its batch."""
    writer = BatchWriter(MemoryStore(), owner="i1", max_batch=2)
    assert [writer.enqueue(rec("a")), writer.enqueue(rec("b")), writer.enqueue(rec("a"))] == [1, 1, 1]
    assert writer.enqueue(rec("c")) == 2
    assert writer.statistics().queued == 3


async def test_group_commit_while_a_commit_is_in_flight(spy: SpyStore) -> None:
    """Records enqueued during a commit all go in the next single transaction."""
    spy.gate = anyio.Event()
    writer = BatchWriter(spy, owner="i1")
    async with anyio.create_task_group() as tg:
        await tg.start(writer.run)
        writer.enqueue(rec("first"))
        await spy.started.wait()
        seq = [writer.enqueue(rec(f"r{i}")) for i in range(100)][-1]
        spy.gate.set()
        await writer.wait_committed(seq)
        tg.cancel_scope.cancel()
    assert spy.writes == [["first"], [f"r{i}" for i in range(100)]]
    assert (writer.statistics().batches, writer.statistics().records_written) == (2, 101)


async def test_coalesces_a_record_enqueued_twice(spy: SpyStore) -> None:
    """A record enqueued twice before its batch commits is written once, in its latest state."""
    writer = BatchWriter(spy, owner="i1")
    record = rec("a")
    writer.enqueue(record)
    record.status = TaskStatus.SUCCESS
    seq = writer.enqueue(record)
    async with anyio.create_task_group() as tg:
        await tg.start(writer.run)
        await writer.wait_committed(seq)
        tg.cancel_scope.cancel()
    assert spy.writes == [["a"]]
    got = await spy.get("a")
    assert got is not None and got.status is TaskStatus.SUCCESS


async def test_record_changed_in_flight_is_written_again(spy: SpyStore) -> None:
    """A record enqueued while its batch is being committed goes in the next batch, newest state last."""
    spy.gate = anyio.Event()
    writer = BatchWriter(spy, owner="i1")
    record = rec("a")
    async with anyio.create_task_group() as tg:
        await tg.start(writer.run)
        assert writer.enqueue(record) == 1
        await spy.started.wait()
        record.status = TaskStatus.RUNNING
        assert writer.enqueue(record) == 2
        spy.gate.set()
        await writer.wait_committed(2)
        tg.cancel_scope.cancel()
    assert spy.writes == [["a"], ["a"]]
    got = await spy.get("a")
    assert got is not None and got.status is TaskStatus.RUNNING


async def test_max_batch_splits_a_flood(spy: SpyStore) -> None:
    """No transaction carries more than max_batch records."""
    writer = BatchWriter(spy, owner="i1", max_batch=10)
    seq = [writer.enqueue(rec(f"r{i:02}")) for i in range(25)][-1]
    async with anyio.create_task_group() as tg:
        await tg.start(writer.run)
        await writer.wait_committed(seq)
        tg.cancel_scope.cancel()
    assert [len(w) for w in spy.writes] == [10, 10, 5]


async def test_failed_writes_are_retried_and_merge_new_records(spy: SpyStore) -> None:
    """A failing write is retried, counted and exposed; records arriving meanwhile join the retried batch."""
    spy.broken = True
    writer = BatchWriter(spy, owner="i1", retry_delay=0)
    async with anyio.create_task_group() as tg:
        await tg.start(writer.run)
        writer.enqueue(rec("a"))
        await spy.failed.wait()
        stats = writer.statistics()
        assert stats.retrying and stats.failures >= 1 and stats.queued == 1
        assert stats.last_error == "OSError: disk full"
        seq = writer.enqueue(rec("b"))
        spy.broken = False
        await writer.wait_committed(seq)
        tg.cancel_scope.cancel()
    assert spy.writes == [["a", "b"]]
    assert not writer.statistics().retrying and writer.statistics().queued == 0


async def test_wait_committed_waits_for_the_commit(spy: SpyStore) -> None:
    """wait_committed returns only after the batch is in the store."""
    spy.gate = anyio.Event()
    writer = BatchWriter(spy, owner="i1")
    done = anyio.Event()

    async def waiter(seq: int) -> None:
        await writer.wait_committed(seq)
        done.set()

    async with anyio.create_task_group() as tg:
        await tg.start(writer.run)
        tg.start_soon(waiter, writer.enqueue(rec("a")))
        await anyio.wait_all_tasks_blocked()
        assert not done.is_set() and await spy.get("a") is None
        spy.gate.set()
        await done.wait()
        assert await spy.get("a") is not None
        tg.cancel_scope.cancel()


async def test_wait_committed_rejects_unknown_batches() -> None:
    """A batch number enqueue never returned raises ValueError instead of waiting forever."""
    with pytest.raises(ValueError, match="never issued"):
        await BatchWriter(MemoryStore(), owner="i1").wait_committed(1)


async def test_flush_commits_everything_enqueued(spy: SpyStore) -> None:
    """flush() returns once everything enqueued so far is committed, with or without run()."""
    writer = BatchWriter(spy, owner="i1", max_batch=3)
    for i in range(5):
        writer.enqueue(rec(f"pre{i}"))
    await writer.flush()  # not running: written inline
    assert writer.statistics().queued == 0 and len(spy.writes) == 2
    async with anyio.create_task_group() as tg:
        await tg.start(writer.run)
        writer.enqueue(rec("live"))
        await writer.flush()
        assert await spy.get("live") is not None
        tg.cancel_scope.cancel()


async def test_requeue_flag_reaches_the_store(spy: SpyStore) -> None:
    """enqueue(requeue=True) is stored as the record's requeue flag."""
    writer = BatchWriter(spy, owner="dead")
    writer.enqueue(rec("a"), requeue=True)
    writer.enqueue(rec("b"))
    await writer.flush()
    flags = {c.record.task_id: c.requeue for c in await spy.claim_orphans("me")}
    assert flags == {"a": True, "b": False}


async def test_cancellation_flushes_what_is_queued(spy: SpyStore) -> None:
    """Cancelling run() mid-commit still writes that batch and everything queued behind it."""
    spy.gate = anyio.Event()
    writer = BatchWriter(spy, owner="i1")
    async with anyio.create_task_group() as tg:
        await tg.start(writer.run)
        writer.enqueue(rec("a"))
        await spy.started.wait()
        writer.enqueue(rec("b"))
        spy.gate = None  # the cancelled write stays blocked; the shutdown flush passes
        tg.cancel_scope.cancel()
    assert await spy.get("a") is not None and await spy.get("b") is not None
    assert writer.statistics().queued == 0


async def test_shutdown_flush_is_bounded(spy: SpyStore) -> None:
    """With a store that keeps failing, shutdown gives up after shutdown_timeout; waiters get an error."""
    spy.broken = True
    writer = BatchWriter(spy, owner="i1", retry_delay=0.01, shutdown_timeout=0.05)
    async with anyio.create_task_group() as tg:
        await tg.start(writer.run)
        seq = writer.enqueue(rec("a"))
        await spy.failed.wait()
        tg.cancel_scope.cancel()
    assert writer.statistics().queued == 1
    with pytest.raises(RuntimeError, match="stopped"):
        await writer.wait_committed(seq)
    with pytest.raises(RuntimeError, match="runs once"):
        await writer.run()


async def test_ten_thousand_records_take_a_handful_of_commits(tmp_path: Path) -> None:
    """10,000 records enqueued at once reach SQLite in ceil(10000 / max_batch) transactions."""
    store = SqliteStore(tmp_path / "t.db")
    await store.open()
    writer = BatchWriter(store, owner="i1")
    async with anyio.create_task_group() as tg:
        await tg.start(writer.run)
        seq = [writer.enqueue(rec(f"r{i}")) for i in range(10_000)][-1]
        await writer.wait_committed(seq)
        tg.cancel_scope.cancel()
    assert writer.statistics().batches == 10
    assert (await store.counts())[TaskStatus.PENDING] == 10_000
    await store.close()


async def test_queued_batch_names_the_batch_that_will_carry_a_task(spy: SpyStore) -> None:
    """queued_batch: the queued batch holding the task; None once that batch is taken, or if never queued."""
    spy.gate = anyio.Event()
    writer = BatchWriter(spy, owner="i1")
    assert writer.queued_batch("a") is None
    assert writer.enqueue(rec("a")) == writer.queued_batch("a") == 1
    async with anyio.create_task_group() as tg:
        await tg.start(writer.run)
        await spy.started.wait()  # batch 1 is in flight: no longer queued
        assert writer.queued_batch("a") is None
        assert writer.enqueue(rec("a", TaskStatus.RUNNING)) == writer.queued_batch("a") == 2
        spy.gate.set()
        await writer.wait_committed(2)
        assert writer.queued_batch("a") is None
        tg.cancel_scope.cancel()
