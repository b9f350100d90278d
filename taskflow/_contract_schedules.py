"""The part of `taskflow.testing.StoreContract` for the optional `ScheduleStore`: the compare-and-set slot
claim, run tickets and their adoption, and the one-off runs. A store without it skips these tests; the
runtime then keeps schedule state per instance."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from ._models import TaskRecord, TaskStatus, new_task_id
from .stores import ClaimOutcome, OneOffEntry, ScheduleStore, TaskStore

_T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
_SLOT = timedelta(minutes=1)


def _schedules(store: TaskStore) -> ScheduleStore:
    if not isinstance(store, ScheduleStore):
        pytest.skip("this store has no schedule state: each instance keeps its own")
    return store


def _once(run_key: str, minutes: int) -> OneOffEntry:
    return OneOffEntry(run_key, "job", _T0 + timedelta(minutes=minutes), '{"args":[1],"kwargs":{}}',
                       None, {"k": "v"}, _T0)  # fmt: skip


class ScheduleContract:
    """Tests of the schedule capability, mixed into `StoreContract`."""

    async def test_a_slot_is_claimed_by_exactly_one_handle(self, store: TaskStore, second: TaskStore) -> None:
        """Concurrent claims of one slot from two handles: exactly one wins, the rest are LOST."""
        first, other = _schedules(store), _schedules(second)
        outcomes: list[ClaimOutcome] = []

        async def claim(handle: ScheduleStore, n: int) -> None:
            outcome = await handle.claim_slot(
                "s", slot=_T0, expected=None, run_id=f"run{n}", owner=f"i{n}", exclusive=False
            )
            outcomes.append(outcome)

        async with anyio.create_task_group() as tg:
            for n in range(6):
                tg.start_soon(claim, first if n % 2 else other, n)
        assert sorted(outcomes) == sorted([ClaimOutcome.CLAIMED] + [ClaimOutcome.LOST] * 5)
        state = (await other.schedule_states(["s"]))["s"]
        assert state.last_slot == _T0
        assert state.last_run_id is not None and state.last_run_id.startswith("run")
        assert state.skipped == 0

    async def test_the_claim_is_a_compare_and_set_of_the_last_slot(self, store: TaskStore) -> None:
        """A claim expecting a stale last slot, or going backwards, is LOST and changes nothing."""
        s = _schedules(store)
        ok = await s.claim_slot("s", slot=_T0, expected=None, run_id="a", owner="i", exclusive=False)
        assert ok is ClaimOutcome.CLAIMED
        stale = await s.claim_slot(
            "s", slot=_T0 + _SLOT, expected=None, run_id="b", owner="i", exclusive=False
        )
        backwards = await s.claim_slot("s", slot=_T0, expected=_T0, run_id="c", owner="i", exclusive=False)
        assert (stale, backwards) == (ClaimOutcome.LOST, ClaimOutcome.LOST)
        nxt = await s.claim_slot("s", slot=_T0 + _SLOT, expected=_T0, run_id="d", owner="i", exclusive=False,
                                 also_skipped=2)  # fmt: skip
        assert nxt is ClaimOutcome.CLAIMED
        state = await s.schedule_states(["s", "never"])
        assert (state["s"].last_slot, state["s"].last_run_id, state["s"].skipped) == (_T0 + _SLOT, "d", 2)
        assert state["never"].last_slot is None and state["never"].paused is False

    async def test_skips_paused_and_overlapping_slots(self, store: TaskStore) -> None:
        """No run id, a paused schedule, or an exclusive one whose last run is live: the slot is SKIPPED."""
        s = _schedules(store)
        first = await s.claim_slot("s", slot=_T0, expected=None, run_id="r1", owner="i", exclusive=True)
        assert first is ClaimOutcome.CLAIMED
        # r1 has a ticket and no record yet: live, so the next exclusive slot is skipped
        t1, t2, t3 = (_T0 + _SLOT * n for n in (1, 2, 3))
        assert (
            await s.claim_slot("s", slot=t1, expected=_T0, run_id="r2", owner="i", exclusive=True)
            == "skipped"
        )
        # its record says it succeeded: no longer live (the record decides once there is one)
        record = TaskRecord("r1", "job", TaskStatus.SUCCESS, end_time=_T0)
        await store.write([record], owner="i")
        await s.release_run("r1")
        assert (
            await s.claim_slot("s", slot=t2, expected=t1, run_id=None, owner="i", exclusive=True) == "skipped"
        )
        await s.set_paused("s", True)
        assert (await s.schedule_states(["s"]))["s"].paused is True
        assert (
            await s.claim_slot("s", slot=t3, expected=t2, run_id="r3", owner="i", exclusive=False)
            == "skipped"
        )
        await s.set_paused("s", False)
        t4 = t3 + _SLOT
        assert (
            await s.claim_slot("s", slot=t4, expected=t3, run_id="r4", owner="i", exclusive=True) == "claimed"
        )
        state = (await s.schedule_states(["s"]))["s"]
        assert (state.skipped, state.last_run_id, state.last_slot, state.paused) == (3, "r4", t4, False)

    async def test_run_now_is_refused_while_the_last_run_is_live(self, store: TaskStore) -> None:
        """claim_extra: BUSY while the last run is live and exclusive; it never moves the last slot."""
        s = _schedules(store)
        assert await s.claim_extra("s", run_id="x1", owner="i", exclusive=True) is ClaimOutcome.CLAIMED
        assert await s.claim_extra("s", run_id="x2", owner="i", exclusive=True) is ClaimOutcome.BUSY
        assert await s.claim_extra("s", run_id="x3", owner="i", exclusive=False) is ClaimOutcome.CLAIMED
        state = (await s.schedule_states(["s"]))["s"]
        assert (state.last_slot, state.last_run_id) == (None, "x3")

    async def test_tickets_of_lost_instances_are_adopted_once(
        self, store: TaskStore, second: TaskStore
    ) -> None:
        """A ticket whose owner has no live heartbeat goes to exactly one adopter; released ones never."""
        s, other = _schedules(store), _schedules(second)
        for instance in ("alive", "me1", "me2"):
            await store.heartbeat(instance, ttl=60)
        await s.claim_slot("s", slot=_T0, expected=None, run_id="lost-run", owner="dead", exclusive=False)
        await s.claim_extra("s", run_id="kept-run", owner="alive", exclusive=False)
        await s.put_once(_once("k1", 1))
        claimed = await s.claim_once("k1", run_id="once-run", owner="dead")
        assert claimed is not None and claimed.run_id == "once-run"
        await s.claim_extra("s", run_id="done-run", owner="dead", exclusive=False)
        await s.release_run("done-run")
        results: list[list[str]] = []

        async def adopt(handle: ScheduleStore, me: str) -> None:
            results.append(sorted(r.run_id for r in await handle.adopt_runs(me)))

        async with anyio.create_task_group() as tg:
            tg.start_soon(adopt, s, "me1")
            tg.start_soon(adopt, other, "me2")
        assert sorted(results) == [[], ["lost-run", "once-run"]]
        assert await s.adopt_runs("me3") == []  # now owned by a live adopter

    async def test_adopted_runs_say_what_they_were(self, store: TaskStore) -> None:
        """An adopted ticket carries its schedule and slot, or its one-off with the call."""
        s = _schedules(store)
        await store.heartbeat("me", ttl=60)
        await s.claim_slot("s", slot=_T0, expected=None, run_id="r", owner="dead", exclusive=False)
        await s.put_once(_once("k", 1))
        await s.claim_once("k", run_id="o", owner="dead")
        adopted = {r.run_id: r for r in await s.adopt_runs("me")}
        assert (adopted["r"].schedule, adopted["r"].slot, adopted["r"].once) == ("s", _T0, None)
        assert adopted["r"].previous_owner == "dead"
        once = adopted["o"].once
        assert once is not None and (once.run_key, once.call, once.tags) == (
            "k",
            _once("k", 1).call,
            {"k": "v"},
        )
        await s.release_run("o")
        assert await s.list_once(limit=10) == []
        assert await s.claim_once("k", run_id="again", owner="me") is None

    async def test_one_offs_list_replace_cancel_and_claim_once(
        self, store: TaskStore, second: TaskStore
    ) -> None:
        """put_once replaces unclaimed entries; list_once orders by fire time; a claim wins once."""
        s, other = _schedules(store), _schedules(second)
        assert await s.put_once(_once("b", 5))
        assert await s.put_once(_once("a", 3))
        assert await s.put_once(_once("c", 9))
        assert await s.put_once(_once("c", 1))  # rescheduled
        listed = await other.list_once(limit=10)
        assert [(e.run_key, e.fire_at) for e in listed] == [
            ("c", _T0 + timedelta(minutes=1)),
            ("a", _T0 + timedelta(minutes=3)),
            ("b", _T0 + timedelta(minutes=5)),
        ]  # fmt: skip
        assert (
            listed[0].call == _once("c", 1).call and listed[0].tags == {"k": "v"} and listed[0].run_id is None
        )
        assert [e.run_key for e in await s.list_once(limit=1)] == ["c"]
        assert [e.run_key for e in await s.list_once(limit=10, before=_T0 + timedelta(minutes=4))] == [
            "c",
            "a",
        ]
        winners = []

        async def claim(handle: ScheduleStore, n: int) -> None:
            entry = await handle.claim_once("a", run_id=f"run{n}", owner="i")
            if entry is not None:
                winners.append(entry.run_id)

        async with anyio.create_task_group() as tg:
            for n in range(4):
                tg.start_soon(claim, s if n % 2 else other, n)
        assert len(winners) == 1
        assert not await s.put_once(_once("a", 7))  # claimed: its run is starting, not rescheduled
        assert not await s.cancel_once("a")
        assert await s.cancel_once("b")
        assert not await s.cancel_once("b")
        assert not await s.cancel_once("missing")
        assert [e.run_key for e in await other.list_once(limit=10)] == ["c"]
        with pytest.raises(ValueError, match="limit"):
            await s.list_once(limit=0)

    async def test_encrypted_one_off_payload_round_trips(self, store: TaskStore) -> None:
        """A one-off's encrypted payload comes back byte for byte."""
        s = _schedules(store)
        entry = OneOffEntry("e", "job", _T0, "", b"\x00\xffsecret", {}, None)
        await s.put_once(entry)
        (listed,) = await s.list_once(limit=5)
        assert (listed.encrypted_payload, listed.call, listed.created_at) == (b"\x00\xffsecret", "", None)
        claimed = await s.claim_once("e", run_id=new_task_id(), owner="i")
        assert claimed is not None and claimed.encrypted_payload == b"\x00\xffsecret"

    async def test_one_off_queue_and_priority_round_trip(self, store: TaskStore, second: TaskStore) -> None:
        """A one-off's own queue and priority come back from list, claim and adoption; None stays None."""
        s, other = _schedules(store), _schedules(second)
        await store.heartbeat("me", ttl=60)
        await s.put_once(dataclasses.replace(_once("q", 1), queue="mail", priority=-7))
        await s.put_once(_once("plain", 2))
        listed = await other.list_once(limit=5)
        assert [(e.run_key, e.queue, e.priority) for e in listed] == [
            ("q", "mail", -7),
            ("plain", None, None),
        ]
        claimed = await s.claim_once("q", run_id="run-q", owner="dead")
        assert claimed is not None and (claimed.queue, claimed.priority, claimed.run_id) == (
            "mail",
            -7,
            "run-q",
        )
        (adopted,) = await other.adopt_runs("me")
        assert adopted.once is not None and (adopted.once.queue, adopted.once.priority) == ("mail", -7)
