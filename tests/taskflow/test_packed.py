"""Finished records packed into plain tuples: exact round trips, what is never packed, and a table whose
answers do not change when its records are packed."""

from __future__ import annotations

import gc
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from taskflow import TaskManager, TaskRecord, TaskStatus
from taskflow import _table as table_module
from taskflow._models import AttemptRecord, utcnow
from taskflow._packed import pack, unpack
from taskflow._table import TaskTable
from tests.helpers import wait_until

NOW = datetime(2026, 11, 28, 15, 30, 12, 345678, tzinfo=UTC)


def finished(task_id: str = "t1", **changes: Any) -> TaskRecord:
    """A task that ran once and succeeded, as the tracker leaves it (one attempt with the record's times)."""
    start, end = NOW + timedelta(microseconds=17), NOW + timedelta(seconds=1, microseconds=3)
    record = TaskRecord(task_id, "job", TaskStatus.SUCCESS, (1, "a"), created_at=NOW, start_time=start)
    record.end_time = end
    record.attempts = [AttemptRecord(1, start, end)]
    for name, value in changes.items():
        setattr(record, name, value)
    return record


def failed_twice() -> TaskRecord:
    record = finished(status=TaskStatus.FAILED, retries_used=1, error="ValueError: no")
    start, end = record.start_time, record.end_time
    assert start is not None and end is not None
    record.attempts = [
        AttemptRecord(1, start, start + timedelta(microseconds=500), "ValueError: first"),
        AttemptRecord(2, start + timedelta(milliseconds=2), end, "ValueError: no"),
    ]
    record.stacktrace = "Traceback (most recent call last):\n  ...\nValueError: no\n"
    record.logs = ["--- Retry 1 ---", "a line"]
    return record


RECORDS = {
    "succeeded once": finished(),
    "failed once": finished(
        status=TaskStatus.FAILED, error="KeyError: 'x'", stacktrace="Traceback ...", status_reason="exception"
    ),
    "failed after a retry": failed_twice(),
    "with everything": finished(
        kwargs={"to": "a@example.com", "n": [1, 2]},
        tags={"tenant": "acme", "kind": "mail"},
        idempotency_key="order-42",
        encrypted_payload=b"\x00\x01secret",
        logs=["one", "two"],
        status_reason="done",
    ),
    "cancelled before it started": TaskRecord(
        "c1", "job", TaskStatus.CANCELLED, created_at=NOW, end_time=NOW + timedelta(seconds=2)
    ),
    "interrupted while running": finished(
        status=TaskStatus.INTERRUPTED,
        attempts=[AttemptRecord(1, NOW + timedelta(microseconds=17))],
        status_reason="shutdown",
    ),
    "traced": finished(trace_context="00-" + "1" * 32 + "-" + "2" * 16 + "-01"),
    "checkpointed": finished(checkpoint='{"done": 3}'),
}


@pytest.mark.parametrize("name", list(RECORDS))
def test_a_packed_record_unpacks_equal(name: str) -> None:
    """Every field comes back equal (times to the microsecond, attempts, containers), as fresh containers."""
    record = RECORDS[name]
    packed = pack(record)
    assert type(packed) is tuple
    again = unpack(packed)
    assert again == record and again.to_dict() == record.to_dict()
    assert again.logs is not record.logs and again.tags is not record.tags
    assert again.kwargs is not record.kwargs
    again.logs.append("changed")
    again.tags["x"] = "y"
    assert unpack(packed) == record  # a caller changing what it was given changes nothing kept


def test_the_common_record_takes_the_short_form() -> None:
    """A task that ran once without error, logs or tags packs to seven items, the others to nineteen."""
    assert len(pack(RECORDS["succeeded once"]) or ()) == 7
    assert len(pack(RECORDS["failed after a retry"]) or ()) == 19
    assert len(pack(RECORDS["traced"]) or ()) == 19
    assert len(pack(RECORDS["checkpointed"]) or ()) == 19


def test_times_survive_the_float_round_trip_exactly() -> None:
    """Microsecond UTC times from 1970 to 2106 come back from their timestamp unchanged."""
    rng = random.Random(20261128)
    top = int((datetime(2106, 2, 7, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1e6)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for micros in [0, 1, 999_999, top - 1] + [rng.randrange(top) for _ in range(20_000)]:
        moment = epoch + timedelta(microseconds=micros)
        assert datetime.fromtimestamp(moment.timestamp(), UTC) == moment


@pytest.mark.parametrize(
    "change",
    [
        {"created_at": NOW.astimezone(timezone(timedelta(hours=2)))},  # prints differently
        {"created_at": NOW.replace(tzinfo=None)},  # naive (old data)
        {"end_time": datetime(2200, 1, 1, tzinfo=UTC)},  # past what a float holds to the microsecond
        {"args": [1, 2]},  # not a tuple
    ],
    ids=["offset", "naive", "far future", "list args"],
)
def test_records_that_cannot_come_back_exactly_stay_unpacked(change: dict[str, Any]) -> None:
    assert pack(finished(**change)) is None


@pytest.mark.parametrize("name", [n for n in RECORDS if n != "with everything"])
def test_a_packed_record_is_soon_not_tracked_by_the_garbage_collector(name: str) -> None:
    """What makes a full collection with many retained records cheap: nothing in them to walk. The
    collector untracks a tuple once its items are untracked, so one nested level takes two passes."""
    packed = pack(RECORDS[name])
    gc.collect()
    gc.collect()
    assert not gc.is_tracked(packed)


def test_a_record_holding_containers_of_its_own_stays_tracked() -> None:
    """User data that may form cycles (a list in the kwargs) keeps the packed tuple tracked."""
    packed = pack(RECORDS["with everything"])
    gc.collect()
    gc.collect()
    assert gc.is_tracked(packed) and unpack(packed or ()).kwargs["n"] == [1, 2]


def _fill(table: TaskTable, n: int) -> list[TaskRecord]:
    records = []
    for i in range(n):
        created = NOW + timedelta(milliseconds=i)
        start, end = created + timedelta(microseconds=9), created + timedelta(seconds=1)
        record = finished(
            f"t{i:04d}",
            created_at=created,
            start_time=start,
            end_time=end,
            attempts=[AttemptRecord(1, start, end)],
            func_name="even" if i % 2 == 0 else "odd",
            status=[TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED][i % 3],
            tags={"n": str(i % 5)} if i % 4 == 0 else {},
            idempotency_key=f"k{i}" if i % 7 == 0 else None,
        )
        live = TaskRecord(record.task_id, record.func_name, TaskStatus.PENDING, created_at=created)
        live.idempotency_key = record.idempotency_key
        table.add(live)
        for name in ("start_time", "end_time", "attempts", "tags", "error"):
            setattr(live, name, getattr(record, name))
        table.set_status(live, record.status)
        records.append(record)
    return records


QUERIES: list[dict[str, Any]] = [
    {},
    {"limit": 7},
    {"statuses": frozenset({TaskStatus.FAILED})},
    {"statuses": frozenset({TaskStatus.SUCCESS, TaskStatus.CANCELLED}), "limit": 5},
    {"func_name": "odd", "limit": 9},
    {"tag": ("n", "3")},
    {"since": NOW + timedelta(milliseconds=250)},
    {"task_id_prefix": "t01"},
]


@pytest.mark.parametrize("query", QUERIES, ids=[str(sorted(q)) for q in QUERIES])
def test_a_table_answers_the_same_with_its_records_packed(
    query: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Filters, order and cursor pages are unchanged when every finished record is packed."""
    plain, packed = TaskTable(max_terminal_records=None), TaskTable(max_terminal_records=None)
    monkeypatch.setattr(table_module, "KEEP_UNPACKED", 10**9)
    _fill(plain, 300)
    monkeypatch.setattr(table_module, "KEEP_UNPACKED", 0)
    _fill(packed, 300)
    assert all(type(item) is tuple for item in packed._records.values())

    def pages(table: TaskTable) -> list[list[dict[str, Any]]]:
        out, cursor = [], None
        while True:
            page = table.query(cursor=cursor, **query)
            out.append([r.to_dict() for r in page.records])
            if page.next_cursor is None or len(out) > 100:
                return out
            cursor = page.next_cursor

    assert pages(packed) == pages(plain)
    assert packed.records() == plain.records()
    assert packed.counts() == plain.counts()


def test_packed_records_keep_idempotency_keys_eviction_and_deletion_working(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(table_module, "KEEP_UNPACKED", 0)
    table = TaskTable(max_terminal_records=100)
    records = _fill(table, 300)
    assert len(table) == 100 and table.evicted == 200
    held = [r for r in records[200:] if r.idempotency_key is not None]
    for record in held:  # a failed or cancelled task releases its key; a succeeded one holds it
        expected = record.task_id if record.status is TaskStatus.SUCCESS else None
        assert table.key_holder(record.idempotency_key or "") == expected
    evicted_success = next(r for r in records[:200] if r.idempotency_key and r.status is TaskStatus.SUCCESS)
    assert table.key_holder(evicted_success.idempotency_key or "") == evicted_success.task_id
    cutoff = records[250].end_time
    assert cutoff is not None
    gone = table.ended_before(cutoff)
    assert gone == [r.task_id for r in records[200:250]]
    assert table.remove(gone) == 50 and len(table) == 50 and table.get(records[249].task_id) is None


def test_only_the_newest_finished_records_stay_objects() -> None:
    """The newest KEEP_UNPACKED terminal records are the runtime's own objects; older ones are packed."""
    table = TaskTable(max_terminal_records=None)
    _fill(table, table_module.KEEP_UNPACKED + 50)
    kinds = [type(item) for item in table._records.values()]
    assert kinds == [tuple] * 50 + [TaskRecord] * table_module.KEEP_UNPACKED


async def test_finished_tasks_read_back_whole_through_the_manager_once_packed() -> None:
    """End to end: an early task's record, read after hundreds more finished, is complete and equal."""
    tm = TaskManager(max_terminal_records=None)

    @tm.task(retries=1)
    async def job(n: int, *, tag: str) -> int:
        if n == 0 and tm.get(ids[0]).retries_used == 0:
            raise RuntimeError("first try fails")
        return n

    ids: list[str] = []
    async with tm.running():
        for n in range(table_module.KEEP_UNPACKED + 20):
            task_id, _ = tm.launcher.submit(job, (n,), {"tag": "x"}, tags={"batch": "b"})
            ids.append(task_id)
            await tm.launcher.start(task_id)
            if n == 0:  # it ends first (after its retry), so it is among the packed ones
                await wait_until(lambda: tm.statistics().success == 1)
        await wait_until(lambda: tm.statistics().success == len(ids))
    assert type(tm.table._records[ids[0]]) is tuple
    first = tm.get(ids[0])
    assert first.status is TaskStatus.SUCCESS and first.args == (0,) and first.kwargs == {"tag": "x"}
    assert first.tags == {"batch": "b"} and first.retries_used == 1
    assert [a.number for a in first.attempts] == [1, 2] and first.attempts[0].error is not None
    assert first.start_time is not None and first.end_time is not None and first.created_at <= utcnow()
    assert [r.task_id for r in tm.query(limit=3).records] == ids[::-1][:3]
    assert tm.query(tag=("batch", "b"), limit=1000).records[-1].task_id == ids[0]
