"""run_supervised: the attempt loop inline in the caller's task."""

from __future__ import annotations

import anyio
import pytest

from supervisors import ChildState, Event, Policy, Succeeded, current_attempt, run_supervised
from supervisors.testing import FakeClock


async def test_run_supervised_retries_inline_and_returns_the_finished_handle() -> None:
    """Retries with exact backoff delays happen inline; the returned handle is finished."""
    clock = FakeClock()
    attempts: list[int] = []
    events: list[Event] = []

    async def flaky(x: int) -> int:
        info = current_attempt()
        assert info is not None
        attempts.append(info.attempt)
        if info.attempt < 3:
            raise ConnectionError
        return x + 1

    policy = Policy(retries=4, delay=1.0, backoff=2.0)
    handle = await run_supervised(flaky, 41, policy=policy, clock=clock, hooks=[events.append], key="k")
    assert (handle.state, handle.result, handle.attempts) == (ChildState.SUCCEEDED, 42, 3)
    assert attempts == [1, 2, 3]
    assert clock.sleeps == [1.0, 2.0]
    assert isinstance(events[-1], Succeeded)
    assert events[-1].supervisor == "inline"
    assert current_attempt() is None  # the caller's context is restored


async def test_run_supervised_never_raises_the_child_error() -> None:
    """A failing child gives a FAILED handle carrying the last error; nothing is raised."""
    error = ValueError("nope")

    def sync_fails() -> None:
        raise error

    handle = await run_supervised(sync_fails)
    assert (handle.state, handle.error) == (ChildState.FAILED, error)


async def test_run_supervised_propagates_caller_cancellation() -> None:
    """Cancelling the caller cancels the run (handle CANCELLED) and the cancellation propagates."""
    handles = []

    async def child() -> None:
        handles.append(current_attempt())
        await anyio.sleep_forever()

    with anyio.move_on_after(0.01) as scope:
        await run_supervised(child)
        pytest.fail("not reached")
    assert scope.cancelled_caught


async def test_run_supervised_honours_the_given_limiters() -> None:
    """limiter= caps async attempts and thread_limiter= sync ones."""
    limiter = anyio.CapacityLimiter(1)
    thread_limiter = anyio.CapacityLimiter(1)
    release = anyio.Event()

    async def hold() -> None:
        async with limiter:
            await release.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(hold)
        await anyio.wait_all_tasks_blocked()
        with anyio.move_on_after(0.05):
            await run_supervised(anyio.lowlevel.checkpoint, limiter=limiter)
            pytest.fail("ran without the limiter")
        release.set()
    assert (await run_supervised(anyio.lowlevel.checkpoint, limiter=limiter)).state is ChildState.SUCCEEDED
    handle = await run_supervised(sum, [1, 2], thread_limiter=thread_limiter)
    assert handle.result == 3
