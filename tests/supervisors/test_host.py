"""The child tasks: children run as native tasks, yet stay inside the supervisor's structured concurrency."""

from __future__ import annotations

import asyncio
import contextvars

import anyio
import anyio.abc
import pytest
import trio

from supervisors import ChildHandle, ChildState, Supervisor


class Abort(BaseException):
    """A non-Exception error, which the attempt loop never catches."""


async def test_an_escalation_cancels_every_running_and_queued_child() -> None:
    """When a child's error takes the task group down, every other child ends CANCELLED."""

    async def forever() -> None:
        await anyio.sleep_forever()

    async def abort() -> None:
        raise Abort

    running: list[ChildHandle] = []
    queued: list[ChildHandle] = []

    async def scenario() -> None:
        async with Supervisor() as sup:
            running.extend(sup.start_soon(forever) for _ in range(20))
            await anyio.wait_all_tasks_blocked()
            sup.start_soon(abort)
            queued.extend(sup.start_soon(forever) for _ in range(5))  # spawned in the error's tick
            await anyio.sleep_forever()

    with pytest.raises(BaseExceptionGroup) as raised:
        await scenario()
    assert raised.group_contains(Abort)
    for handle in running:
        assert (handle.state, handle.reason) == (ChildState.CANCELLED, "supervisor_cancelled")
    for handle in queued:
        assert handle.state is ChildState.CANCELLED


async def test_stopping_the_children_respects_a_shield_inside_a_child() -> None:
    """A child's shielded cleanup runs to its end before the supervisor (and its owner) goes down."""
    cleaned: list[str] = []

    async def with_cleanup() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.05)
                cleaned.append("done")

    async def abort() -> None:
        raise Abort

    handles: list[ChildHandle] = []

    async def scenario() -> None:
        async with Supervisor() as sup:
            handles.append(sup.start_soon(with_cleanup))
            await anyio.wait_all_tasks_blocked()
            sup.start_soon(abort)
            await anyio.sleep_forever()

    with pytest.raises(BaseExceptionGroup):
        await scenario()
    assert cleaned == ["done"]
    assert handles[0].state is ChildState.CANCELLED


async def test_a_base_exception_from_a_child_reaches_the_owner_and_stops_its_siblings() -> None:
    async def abort() -> None:
        await anyio.sleep(0.01)
        raise Abort

    async def forever() -> None:
        await anyio.sleep_forever()

    siblings: list[ChildHandle] = []
    aborted: list[ChildHandle] = []

    async def scenario() -> None:
        async with Supervisor() as sup:
            siblings.append(sup.start_soon(forever))
            aborted.append(sup.start_soon(abort))
            await anyio.sleep_forever()

    with pytest.raises(BaseExceptionGroup) as raised:
        await scenario()
    assert raised.group_contains(Abort)
    assert siblings[0].state is ChildState.CANCELLED
    assert (aborted[0].state, aborted[0].reason) == (ChildState.FAILED, "base_exception")
    assert isinstance(aborted[0].error, Abort)


async def test_children_run_in_the_context_they_were_given() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[str] = []

    async def read() -> None:
        seen.append(var.get())
        var.set("changed by the child")  # in its own copy: the given context stays as it was

    given = contextvars.copy_context()
    given.run(var.set, "given")
    async with Supervisor() as sup:
        sup.start_soon(read, context=given)
        sup.start_soon(read)
    assert sorted(seen) == ["given", "unset"]
    assert given[var] == "given"


async def test_each_child_is_a_native_task_running_its_body_directly(anyio_backend: str) -> None:
    """asyncio's loop.create_task / trio's nursery.start_soon, not anyio's TaskHandle wrapper.

    If children went through `TaskGroup.start_soon` they would still run, but their task's coroutine would be
    anyio's wrapper: this fails so that the per-task cost regression is noticed.
    """
    coroutines: list[str] = []

    async def probe() -> None:
        if anyio_backend == "asyncio":
            task = asyncio.current_task()
            assert task is not None
            coroutines.append(task.get_coro().__qualname__)  # type: ignore[union-attr]
        else:
            coroutines.append(trio.lowlevel.current_task().coro.__qualname__)

    async with Supervisor() as sup:
        sup.start_soon(probe)
    assert coroutines == ["run_child"]


class Stubborn(BaseException):
    """Raised by a child as it is cancelled."""


async def test_an_error_raised_while_the_children_stop_is_not_lost() -> None:
    """The task group is cancelled; a child raises as it is cancelled: the error still reaches the owner."""

    async def stubborn() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            raise Stubborn  # from a finally block: the point of the test

    async def fails_after_starting(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        task_status.started()
        await anyio.wait_all_tasks_blocked()
        raise Abort  # start() runs it in the task group itself: the group goes down, not via a shutdown

    async def scenario() -> None:
        async with Supervisor() as sup:
            sup.start_soon(stubborn)
            await anyio.wait_all_tasks_blocked()
            await sup.start(fails_after_starting)
            await anyio.sleep_forever()

    with pytest.raises(BaseExceptionGroup) as raised:
        await scenario()
    assert raised.group_contains(Abort)
    assert raised.group_contains(Stubborn)
