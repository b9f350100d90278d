"""Testing helpers: the store contract suite, for anyone writing a `TaskStore`, and helpers for testing an
app's own tasks (`run_until_idle`, `wait_until_idle`, `TaskRecorder`; see `docs/testing` in
docs/supervisors.md).

Subclass `StoreContract` in a test module and override `store_factory`:

    import pytest
    from taskflow.testing import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store_factory(self, tmp_path):
            return lambda: MyStore(tmp_path / "tasks.db")

`store_factory` returns a callable that makes a new, unopened handle onto the *same* storage each time (a
second connection to the same file, server or namespace; an in-process store may return one object). The
suite opens and closes the handles itself, runs every test on asyncio and on trio (override
`anyio_backend` to narrow that), and uses a second handle to check that claims are exclusive between
connections. It needs pytest, anyio's pytest plugin (installed with anyio) and trio.

This one module holds the whole suite (past the usual module size) so that a third party imports one name.
"""

from __future__ import annotations

import dataclasses
import sys
import types
from collections.abc import AsyncIterator, Callable
from datetime import UTC as _UTC
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

import anyio
import pytest

from ._contract_access import AccessContract
from ._contract_optional import OptionalContract
from ._contract_schedules import ScheduleContract
from ._exceptions import PayloadError
from ._harness import RecordedChange as RecordedChange
from ._harness import TaskRecorder as TaskRecorder
from ._harness import run_until_idle as run_until_idle
from ._harness import wait_until_idle as wait_until_idle
from ._manual_clock import ManualScheduleClock as ManualScheduleClock
from ._models import AttemptRecord, TaskRecord, TaskStatus
from .stores import InvalidCursor, TaskStore

__all__ = [
    "ManualScheduleClock",
    "RecordedChange",
    "StoreContract",
    "TaskRecorder",
    "run_until_idle",
    "wait_until_idle",
]

_T0 = datetime(2024, 5, 1, 12, 0, tzinfo=_UTC)
_S = TaskStatus


def _record(task_id: str, status: TaskStatus = _S.PENDING, *, at: int = 0, **fields: Any) -> TaskRecord:
    """A record created `at` seconds after _T0; terminal ones end a second after they start."""
    fields.setdefault("created_at", _T0 + timedelta(seconds=at))
    if status.is_terminal:
        fields.setdefault("start_time", fields["created_at"])
        fields.setdefault("end_time", fields["created_at"] + timedelta(seconds=1))
    return TaskRecord(task_id=task_id, func_name=fields.pop("func_name", "job"), status=status, **fields)


async def _all_pages(store: TaskStore, limit: int, **filters: Any) -> list[str]:
    ids: list[str] = []
    cursor = None
    for _ in range(1000):  # bounded: a store that never ends its pages fails instead of hanging
        page = await store.query(limit=limit, cursor=cursor, **filters)
        assert len(page.records) <= limit
        ids.extend(r.task_id for r in page.records)
        cursor = page.next_cursor
        if cursor is None:
            return ids
    raise AssertionError("query never returned a last page")


class StoreContract(OptionalContract, AccessContract, ScheduleContract):
    """Every behaviour a `TaskStore` must have; subclass it and override `store_factory`."""

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.anyio]

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        """Each contract test runs once per backend: every store must work on asyncio and trio."""
        return str(request.param)

    @pytest.fixture
    def store_factory(self) -> Callable[[], TaskStore]:
        """Override: return a callable making new, unopened handles onto one shared storage."""
        raise NotImplementedError("override the store_factory fixture in your StoreContract subclass")

    @pytest.fixture
    async def store(self, store_factory: Callable[[], TaskStore]) -> AsyncIterator[TaskStore]:
        """An opened handle, closed after the test."""
        store = store_factory()
        await store.open()
        try:
            yield store
        finally:
            await store.close()

    @pytest.fixture
    async def second(
        self, store: TaskStore, store_factory: Callable[[], TaskStore]
    ) -> AsyncIterator[TaskStore]:
        """Another opened handle onto the same storage (another connection)."""
        other = store_factory()
        await other.open()
        try:
            yield other
        finally:
            await other.close()

    # ---- records --------------------------------------------------------------------------------------

    async def test_round_trip_every_field(self, store: TaskStore) -> None:
        """get() returns every field as written, args with their exact types and payload bytes intact."""
        record = _record(
            "t1", _S.FAILED, at=5,
            args=(1, 2.5, "s", None, (1, 2), {3}, b"\x00\xff", date(2024, 1, 2), Decimal("1.10")),
            kwargs={"nested": {"k": [1, (2, 3)]}, "when": _T0, "gap": timedelta(seconds=3)},
            retries_used=2, error="boom", logs=["one", "two ✓"], stacktrace="Traceback...",
            idempotency_key="key-1", tags={"team": "a", "env": "prod"}, encrypted_payload=b"\x80gA\x00\xfe",
            attempts=[AttemptRecord(1, _T0, _T0 + timedelta(seconds=1), "first"), AttemptRecord(2, _T0)],
            status_reason="gave up", trace_context="00-" + "ab" * 16 + "-" + "cd" * 8 + "-01",
            checkpoint='{"done": 40, "cursor": "é"}',
        )  # fmt: skip
        await store.write([record], owner="i1")
        got = await store.get("t1")
        assert got == record
        assert got is not None and type(got.args[4]) is tuple and type(got.args[6]) is bytes

    async def test_get_unknown_is_none(self, store: TaskStore) -> None:
        """get() of an id never written returns None."""
        assert await store.get("nope") is None

    async def test_write_upserts_latest_state(self, store: TaskStore) -> None:
        """Writing a record again replaces it: one record, in its newest state."""
        record = _record("t1", tags={"a": "1"})
        await store.write([record], owner="i1")
        done = dataclasses.replace(record, status=_S.SUCCESS, end_time=_T0, logs=["done"], tags={"b": "2"})
        await store.write([done], owner="i1")
        assert await store.get("t1") == done
        assert (await store.counts())[_S.SUCCESS] == 1 and sum((await store.counts()).values()) == 1
        assert [r.task_id for r in (await store.query(tag=("b", "2"))).records] == ["t1"]
        assert (await store.query(tag=("a", "1"))).records == []

    async def test_write_is_all_or_nothing(self, store: TaskStore) -> None:
        """A batch with arguments that cannot be stored raises TypeError and stores none of the batch."""
        with pytest.raises(TypeError):
            await store.write([_record("good"), _record("bad", args=(object(),))], owner="i1")
        assert await store.get("good") is None

    async def test_records_are_copies(self, store: TaskStore) -> None:
        """Changing a record after writing it, or a record read back, changes nothing stored."""
        record = _record("t1", logs=["a"])
        await store.write([record], owner="i1")
        record.logs.append("b")
        got = await store.get("t1")
        assert got is not None and got.logs == ["a"]
        got.tags["x"] = "y"
        assert (await store.get("t1")) == dataclasses.replace(got, tags={})

    async def test_handles_share_storage(self, store: TaskStore, second: TaskStore) -> None:
        """A record written through one handle is read through another."""
        await store.write([_record("t1")], owner="i1")
        assert await second.get("t1") == _record("t1")

    async def test_open_twice_and_reopen(self, store: TaskStore) -> None:
        """open() is idempotent; after close() the store refuses work, and open() again finds the data."""
        await store.write([_record("t1")], owner="i1")
        await store.open()
        assert await store.get("t1") is not None
        await store.close()
        await store.close()
        with pytest.raises(RuntimeError):
            await store.get("t1")
        await store.open()
        assert await store.get("t1") == _record("t1")

    # ---- queries --------------------------------------------------------------------------------------

    async def test_query_pages_newest_first(self, store: TaskStore) -> None:
        """Pages run newest first with no record missing or repeated, and the last has no cursor."""
        await store.write([_record(f"t{i:02}", at=i) for i in range(25)], owner="i1")
        assert await _all_pages(store, 10) == [f"t{i:02}" for i in reversed(range(25))]
        assert (await store.query(limit=25)).next_cursor is None

    async def test_query_ties_break_by_task_id(self, store: TaskStore) -> None:
        """Records created at the same instant are ordered by task_id, also across page boundaries."""
        await store.write([_record(f"t{i}") for i in range(7)], owner="i1")
        assert await _all_pages(store, 3) == [f"t{i}" for i in reversed(range(7))]

    async def test_query_filters(self, store: TaskStore) -> None:
        """statuses, func_name, tag, since and task_id_prefix filter, alone and together."""
        await store.write(
            [
                _record("a1", _S.PENDING, at=1, func_name="send", tags={"team": "x"}),
                _record("a2", _S.SUCCESS, at=2, func_name="send", tags={"team": "y"}),
                _record("b3", _S.FAILED, at=3, func_name="bill", tags={"team": "x"}),
                _record("b4", _S.RUNNING, at=4, func_name="send"),
            ],
            owner="i1",
        )

        async def ids(**filters: Any) -> list[str]:
            return [r.task_id for r in (await store.query(**filters)).records]

        assert await ids(statuses=frozenset({_S.SUCCESS, _S.FAILED})) == ["b3", "a2"]
        assert await ids(statuses=frozenset()) == []
        assert await ids(func_name="send") == ["b4", "a2", "a1"]
        assert await ids(tag=("team", "x")) == ["b3", "a1"]
        assert await ids(tag=("team", "z")) == []
        assert await ids(since=_T0 + timedelta(seconds=3)) == ["b4", "b3"]
        assert await ids(task_id_prefix="b") == ["b4", "b3"]
        assert await ids(task_id_prefix="A") == []  # prefixes are case-sensitive
        assert await ids(func_name="send", tag=("team", "x"), statuses=frozenset({_S.PENDING})) == ["a1"]
        assert await _all_pages(store, 1, func_name="send") == ["b4", "a2", "a1"]

    async def test_query_leaves_args_out(self, store: TaskStore) -> None:
        """Listings carry no args or kwargs (get() has them), so one unreadable payload cannot break them."""
        await store.write([_record("t1", args=(1,), kwargs={"k": 2})], owner="i1")
        (listed,) = (await store.query()).records
        assert (listed.args, listed.kwargs) == ((), {})

    async def test_query_rejects_bad_input(self, store: TaskStore) -> None:
        """A cursor the store did not issue raises InvalidCursor; a limit below 1 raises ValueError."""
        for cursor in ("garbage", "", "x" * 600, "WyJub3QtYS1kYXRlIiwieCJd"):
            with pytest.raises(InvalidCursor):
                await store.query(cursor=cursor)
        with pytest.raises(ValueError, match="limit"):
            await store.query(limit=0)

    async def test_counts_every_status(self, store: TaskStore) -> None:
        """counts() has every status, zeros included."""
        assert await store.counts() == dict.fromkeys(TaskStatus, 0)
        await store.write([_record("a"), _record("b", _S.SUCCESS), _record("c", _S.SUCCESS)], owner="i1")
        assert await store.counts() == {**dict.fromkeys(TaskStatus, 0), _S.PENDING: 1, _S.SUCCESS: 2}

    # ---- idempotency ------------------------------------------------------------------------------------

    async def test_idempotency_key_claims(self, store: TaskStore) -> None:
        """A key is held by its task until that task fails, is cancelled or interrupted."""
        assert await store.claim_idempotency_key("k", "t1") is None
        assert await store.claim_idempotency_key("k", "t2") == "t1"  # t1 not written yet: still held
        assert await store.claim_idempotency_key("k", "t1") is None  # the holder itself
        await store.write([_record("t1", _S.SUCCESS)], owner="i1")
        assert await store.claim_idempotency_key("k", "t2") == "t1"
        for status in (_S.FAILED, _S.CANCELLED, _S.INTERRUPTED):
            holder = await store.claim_idempotency_key("k", "x") or "x"
            await store.write([_record(holder, status)], owner="i1")
            assert await store.claim_idempotency_key("k", f"after-{status.value}") is None
            await store.write([_record(f"after-{status.value}", _S.PENDING)], owner="i1")
            assert await store.claim_idempotency_key("k", "x") == f"after-{status.value}"
            await store.write([_record(f"after-{status.value}", status)], owner="i1")

    async def test_held_keys_lists_keys_of_succeeded_tasks_newest_first(self, store: TaskStore) -> None:
        """held_keys returns the keys whose holder succeeded, newest first, bounded by limit."""
        for n, status in enumerate([_S.SUCCESS, _S.SUCCESS, _S.FAILED, _S.RUNNING, _S.SUCCESS]):
            assert await store.claim_idempotency_key(f"k{n}", f"t{n}") is None
            await store.write([_record(f"t{n}", status, at=n)], owner="i1")
        assert await store.held_keys(limit=10) == {"k4": "t4", "k1": "t1", "k0": "t0"}
        assert list(await store.held_keys(limit=2)) == ["k4", "k1"]

    async def test_concurrent_key_claims_have_one_winner(self, store: TaskStore, second: TaskStore) -> None:
        """Two connections claiming the same keys at once: exactly one wins each key, the other sees it."""
        results: dict[str, list[tuple[str, str | None]]] = {f"k{i}": [] for i in range(20)}

        async def claim(handle: TaskStore, key: str, task_id: str) -> None:
            results[key].append((task_id, await handle.claim_idempotency_key(key, task_id)))

        async with anyio.create_task_group() as tg:
            for key in results:
                tg.start_soon(claim, store, key, f"{key}-a")
                tg.start_soon(claim, second, key, f"{key}-b")
        for outcomes in results.values():
            winners = [task_id for task_id, holder in outcomes if holder is None]
            assert len(winners) == 1
            assert [holder for _, holder in outcomes if holder is not None] == winners

    # ---- heartbeats and orphans -------------------------------------------------------------------------

    async def test_orphans_of_dead_instances_only(self, store: TaskStore) -> None:
        """Live records of instances without a live heartbeat are taken once; the living keep theirs."""
        await store.heartbeat("alive", ttl=600)
        await store.heartbeat("expired", ttl=0)
        await store.heartbeat("me", ttl=600)
        await store.write(
            [
                _record("d1", at=1, args=(1, (2,))),
                _record("d2", _S.RUNNING, at=2),
                _record("d3", _S.SUCCESS, at=3),
            ],
            owner="dead",
            requeue_ids=frozenset({"d2"}),
        )
        await store.write([_record("e1", _S.RUNNING, at=4)], owner="expired")
        await store.write([_record("a1", at=5)], owner="alive")
        await store.write([_record("m1", at=6)], owner="me")
        claimed = await store.claim_orphans("me")
        got = {c.record.task_id: (c.requeue, c.previous_owner) for c in claimed}
        assert got == {"d1": (False, "dead"), "d2": (True, "dead"), "e1": (False, "expired")}
        d1 = next(c.record for c in claimed if c.record.task_id == "d1")
        assert d1 == _record("d1", at=1, args=(1, (2,)))
        assert await store.claim_orphans("other") == []  # now owned by "me", which is alive

    async def test_forgotten_instance_work_is_claimable(self, store: TaskStore) -> None:
        """After forget_instance, the instance's live records are orphans."""
        await store.heartbeat("gone", ttl=600)
        await store.write([_record("t1")], owner="gone")
        assert await store.claim_orphans("me") == []
        await store.forget_instance("gone")
        assert [c.record.task_id for c in await store.claim_orphans("me")] == ["t1"]

    async def test_heartbeat_rejects_bad_ttl(self, store: TaskStore) -> None:
        """A negative or non-finite ttl raises ValueError."""
        for ttl in (-1.0, float("nan"), float("inf")):
            with pytest.raises(ValueError, match="ttl"):
                await store.heartbeat("i1", ttl=ttl)

    async def test_concurrent_orphan_claims_are_exclusive(self, store: TaskStore, second: TaskStore) -> None:
        """Two connections claiming at once: each orphan goes to exactly one of them."""

        async def claim(handle: TaskStore, name: str, into: list[str]) -> None:
            await handle.heartbeat(name, ttl=600)
            into.extend(c.record.task_id for c in await handle.claim_orphans(name))

        for rnd in range(5):
            await store.write([_record(f"r{rnd}-{i}", at=i) for i in range(20)], owner=f"dead{rnd}")
            outcomes: dict[str, list[str]] = {"a": [], "b": []}
            async with anyio.create_task_group() as tg:
                tg.start_soon(claim, store, "a", outcomes["a"])
                tg.start_soon(claim, second, "b", outcomes["b"])
            assert not set(outcomes["a"]) & set(outcomes["b"])
            assert sorted(outcomes["a"] + outcomes["b"]) == sorted(f"r{rnd}-{i}" for i in range(20))

    async def test_orphan_with_unreadable_args_is_not_requeued(self, store: TaskStore) -> None:
        """An orphan whose args name a class that is gone comes back empty, requeue=False, with a reason."""
        module = types.ModuleType("taskflow_contract_gone")
        sys.modules[module.__name__] = module  # before the class exists: dataclasses look its module up
        try:
            exec("import dataclasses\n@dataclasses.dataclass\nclass Gone:\n    x: int\n", module.__dict__)
            record = _record("t1", args=(module.Gone(1),))
            await store.write([record], owner="dead", requeue_ids=frozenset({"t1"}))
        finally:
            del sys.modules[module.__name__]
        with pytest.raises(PayloadError):
            await store.get("t1")
        (claimed,) = await store.claim_orphans("me")
        assert (claimed.record.args, claimed.requeue) == ((), False)
        assert claimed.record.status_reason is not None and "unreadable" in claimed.record.status_reason

    # ---- deletion ----------------------------------------------------------------------------------------

    async def test_delete_before(self, store: TaskStore) -> None:
        """Terminal records that ended before the cutoff go, their keys are released; others stay."""
        old = _record("old", _S.SUCCESS, at=0, idempotency_key="k")
        live = _record("live", _S.RUNNING, at=0, start_time=_T0)
        await store.write([old, _record("new", _S.FAILED, at=100), live], owner="i1")
        await store.claim_idempotency_key("k", "old")
        assert await store.delete_before(_T0 + timedelta(seconds=50)) == 1
        assert await store.get("old") is None and await store.get("new") is not None
        assert await store.get("live") is not None
        assert await store.claim_idempotency_key("k", "fresh") is None
        assert await store.delete_before(_T0) == 0

    async def test_delete_only_terminal(self, store: TaskStore) -> None:
        """delete() removes the terminal records among the ids; live and unknown ones are skipped."""
        await store.write([_record("done", _S.CANCELLED), _record("live", _S.PENDING)], owner="i1")
        assert await store.delete(["done", "live", "missing", "done"]) == 1
        assert await store.get("done") is None and await store.get("live") is not None
        assert await store.delete([]) == 0
