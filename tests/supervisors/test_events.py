"""Hooks: events in order with the right fields and reasons; a raising hook is isolated and logged."""

from __future__ import annotations

import logging

import anyio
import pytest

from supervisors import (
    AttemptFailed,
    AttemptStarted,
    Cancelled,
    ChildEvent,
    Event,
    Failed,
    Interrupted,
    Policy,
    RetryScheduled,
    Succeeded,
    Supervisor,
)
from supervisors.testing import FakeClock


class Recorder:
    """A SupervisorHook object (on_event method)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def on_event(self, event: Event) -> None:
        self.events.append(event)


async def test_events_of_a_retried_child_in_order_with_fields() -> None:
    """Started, Failed(will_retry), RetryScheduled(delay), Started, Succeeded(result) with common fields."""
    recorder = Recorder()
    clock = FakeClock(start=100.0)
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("first")
        return "done"

    async with Supervisor(Policy(retries=1, delay=2.0), name="jobs", hooks=[recorder], clock=clock) as sup:
        handle = await sup.start_soon(flaky, key="k1").wait()
    kinds = [type(e) for e in recorder.events]
    assert kinds == [AttemptStarted, AttemptFailed, RetryScheduled, AttemptStarted, Succeeded]
    failed, scheduled, succeeded = recorder.events[1], recorder.events[2], recorder.events[4]
    assert isinstance(failed, AttemptFailed)
    assert isinstance(scheduled, RetryScheduled)
    assert (failed.will_retry, failed.reason, str(failed.error)) == (True, "error", "first")
    assert (scheduled.delay, scheduled.error) == (2.0, failed.error)
    assert isinstance(succeeded, Succeeded)
    assert succeeded.result == "done"
    for event in recorder.events:
        assert isinstance(event, ChildEvent)
        assert (event.supervisor, event.child_id, event.name, event.key) == (
            "jobs",
            handle.id,
            handle.name,
            "k1",
        )
    assert [e.attempt for e in recorder.events] == [1, 1, 1, 2, 2]
    assert [e.timestamp for e in recorder.events] == [100.0, 100.0, 100.0, 102.0, 102.0]


async def test_failed_event_reasons() -> None:
    """Failed carries "error", "timeout" or "not_retryable" and the original exception."""
    events: list[Event] = []
    boom = KeyError("boom")

    async def raises() -> None:
        raise boom

    async with Supervisor(Policy(retries=1, retry_on=ValueError), hooks=[events.append]) as sup:
        await sup.start_soon(raises).wait()
        await sup.start_soon(anyio.sleep_forever, policy=Policy(timeout=0.01)).wait()
    failed = [e for e in events if isinstance(e, Failed)]
    assert [(f.reason, type(f.error)) for f in failed] == [
        ("not_retryable", KeyError),
        ("timeout", TimeoutError),
    ]
    assert failed[0].error is boom


async def test_cancelled_and_interrupted_events() -> None:
    """Cancelled carries the cancel reason; Interrupted carries "shutdown" and the checkpoint outcome."""
    events: list[Event] = []

    async def checkpoint(handle: object) -> str:
        return "state"

    async with Supervisor(hooks=[events.append], shutdown_grace=0) as sup:
        sup.start_soon(anyio.sleep_forever).cancel("user")
        sup.start_soon(anyio.sleep_forever, checkpoint=checkpoint)
        await anyio.wait_all_tasks_blocked()
    cancelled = [e for e in events if isinstance(e, Cancelled)]
    interrupted = [e for e in events if isinstance(e, Interrupted)]
    assert [c.reason for c in cancelled] == ["user"]
    assert [(i.reason, i.checkpoint, i.checkpoint_error) for i in interrupted] == [
        ("shutdown", "state", None)
    ]


async def test_a_raising_hook_is_isolated_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A hook that raises is logged with its traceback; the child and the other hooks are unaffected."""
    after: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("hook bug")

    async def child() -> int:
        return 7

    with caplog.at_level(logging.ERROR, logger="supervisors"):
        async with Supervisor(hooks=[broken, after.append]) as sup:
            handle = await sup.start_soon(child).wait()
    assert handle.result == 7
    assert [type(e) for e in after] == [AttemptStarted, Succeeded]
    records = [r for r in caplog.records if r.name == "supervisors"]
    assert len(records) == 2
    assert records[0].exc_info is not None
    assert "hook bug" in caplog.text


def test_hooks_must_be_callable_or_have_on_event() -> None:
    """A hook that is neither callable nor a SupervisorHook is rejected at construction."""
    with pytest.raises(TypeError, match="on_event"):
        Supervisor(hooks=[42])  # type: ignore[list-item]
