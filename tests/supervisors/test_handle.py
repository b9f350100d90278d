"""ChildHandle: cancellation in every state, wait(), current_attempt() in async and sync children."""

from __future__ import annotations

import contextvars
import threading
import weakref

import anyio
import pytest

from supervisors import AttemptInfo, ChildState, Policy, Supervisor, current_attempt
from supervisors.testing import FakeClock


async def test_cancel_pending_child_never_runs() -> None:
    """A child waiting for a limiter slot is CANCELLED at once and never starts."""
    gate = anyio.Event()
    ran = []

    async def record() -> None:
        ran.append(1)

    async with Supervisor(Policy(max_concurrency=1)) as sup:
        blocker = sup.start_soon(gate.wait)
        await anyio.wait_all_tasks_blocked()
        pending = sup.start_soon(record)
        await anyio.wait_all_tasks_blocked()
        assert pending.state is ChildState.PENDING
        assert pending.cancel() is True
        assert (pending.state, pending.reason) == (ChildState.CANCELLED, "cancelled")
        gate.set()
        await blocker.wait()
    assert ran == []
    assert pending.cancel() is False


async def test_cancel_before_the_task_ran_never_runs() -> None:
    """Cancelling right after start_soon (task not scheduled yet) means the child never runs."""
    ran = []

    async def record() -> None:
        ran.append(1)

    async with Supervisor() as sup:
        sup.start_soon(record).cancel("changed my mind")
    assert ran == []


async def test_cancel_running_async_child() -> None:
    """A running async child is cancelled through its scope, with the given reason."""
    async with Supervisor() as sup:
        handle = sup.start_soon(anyio.sleep_forever)
        await anyio.wait_all_tasks_blocked()
        assert handle.state is ChildState.RUNNING
        assert handle.cancel(reason="user") is True
        await handle.wait()
        assert (handle.state, handle.reason) == (ChildState.CANCELLED, "user")
        await anyio.wait_all_tasks_blocked()  # the attempt itself unwinds on the next scheduling round
        assert sup.statistics().running == 0


async def test_cancel_running_sync_child_reports_cancelled_while_thread_is_blocked() -> None:
    """A sync child's thread is abandoned: CANCELLED at once though the thread is still blocked."""
    release = threading.Event()
    entered = threading.Event()
    finished = threading.Event()

    def blocking() -> str:
        entered.set()
        release.wait()
        finished.set()
        return "late"

    try:
        async with Supervisor() as sup:
            handle = sup.start_soon(blocking)
            with anyio.fail_after(5):
                while not entered.is_set():  # a real thread: poll with a deadline
                    await anyio.sleep(0.001)
            assert handle.cancel() is True
            assert handle.state is ChildState.CANCELLED
            await handle.wait()
            assert not finished.is_set()
    finally:
        release.set()
    assert handle.result is None  # the late result is discarded


async def test_cancel_retrying_child_in_backoff() -> None:
    """A child sleeping out its backoff delay is cancelled and makes no further attempt."""
    attempts = 0

    async def fails() -> None:
        nonlocal attempts
        attempts += 1
        raise ValueError

    async with Supervisor(Policy(retries=5, delay=3600)) as sup:
        handle = sup.start_soon(fails)
        await anyio.wait_all_tasks_blocked()
        assert handle.state is ChildState.RETRYING
        assert handle.cancel() is True
        await handle.wait()
    assert (handle.state, attempts) == (ChildState.CANCELLED, 1)


async def test_wait_returns_the_handle_without_raising() -> None:
    """wait() returns the handle of a failed child instead of raising its error."""

    async def boom() -> None:
        raise ValueError("boom")

    async with Supervisor() as sup:
        handle = sup.start_soon(boom)
        assert await handle.wait() is handle
    assert isinstance(handle.error, ValueError)
    assert await handle.wait() is handle  # finished: returns at once


async def test_current_attempt_in_async_and_sync_children() -> None:
    """current_attempt() describes the running attempt in async children and in sync threads."""
    seen: list[AttemptInfo | None] = []
    policy = Policy(name="p", retries=1)

    async def async_child() -> None:
        seen.append(current_attempt())
        if len(seen) == 1:
            raise ValueError

    def sync_child() -> None:
        seen.append(current_attempt())

    assert current_attempt() is None
    async with Supervisor(policy, clock=FakeClock()) as sup:
        a = await sup.start_soon(async_child, key="k").wait()
        s = await sup.start_soon(sync_child, name="sync").wait()
    assert seen == [
        AttemptInfo(a.id, a.name, "k", 1, policy),
        AttemptInfo(a.id, a.name, "k", 2, policy),
        AttemptInfo(s.id, "sync", None, 1, policy),
    ]


request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


async def test_context_reaches_async_and_sync_children() -> None:
    """A contextvars.Context given as context= is what async and sync children see."""
    seen = []

    async def async_child() -> None:
        seen.append(request_id.get())

    def sync_child() -> None:
        seen.append(request_id.get())

    token = request_id.set("r-42")
    ctx = contextvars.copy_context()
    request_id.reset(token)
    async with Supervisor() as sup:
        await sup.start_soon(async_child, context=ctx).wait()
        await sup.start_soon(sync_child, context=ctx.copy()).wait()
        await sup.start_soon(async_child).wait()
    assert seen == ["r-42", "r-42", "-"]


async def test_handle_ids_increase_and_names_default_to_qualname() -> None:
    """Ids increase per process; the default name is the function's qualified name."""
    async with Supervisor() as sup:
        first = sup.start_soon(anyio.lowlevel.checkpoint)
        second = sup.start_soon(anyio.lowlevel.checkpoint, name="custom", key=("tenant", 1))
    assert second.id > first.id
    assert first.name == "checkpoint"
    assert (second.name, second.key) == ("custom", ("tenant", 1))
    assert "succeeded" in repr(second)


@pytest.mark.parametrize("state", ["succeeded", "failed"])
async def test_cancel_after_finish_returns_false(state: str) -> None:
    """cancel() of a finished child returns False and changes nothing."""

    async def child() -> None:
        if state == "failed":
            raise ValueError

    async with Supervisor() as sup:
        handle = await sup.start_soon(child).wait()
    assert handle.cancel() is False
    assert handle.state.value == state


class Job:
    """A callable child whose lifetime a weak reference can follow."""

    async def __call__(self, payload: Payload) -> int:
        return len(payload.items)


class Payload:
    """An argument whose lifetime a weak reference can follow."""

    def __init__(self, *items: int) -> None:
        self.items = items


async def test_a_finished_childs_handle_keeps_its_callable_and_arguments_alive_no_longer() -> None:
    """Once the child's task ended, neither its callable nor its arguments are reachable from its handle."""
    job, payload = Job(), Payload(1, 2, 3)
    job_ref, payload_ref = weakref.ref(job), weakref.ref(payload)
    async with Supervisor() as sup:
        handle = sup.start_soon(job, payload)
        del job, payload
        await handle.wait()
        await anyio.wait_all_tasks_blocked()  # the child's task ends a scheduling round after its outcome
    assert handle.result == 3
    assert job_ref() is None
    assert payload_ref() is None
