"""Restart modes (permanent/transient/temporary) and restart intensity with RestartLimitExceeded."""

from __future__ import annotations

import anyio
import pytest

from supervisors import (
    ChildHandle,
    ChildState,
    Event,
    GaveUp,
    Policy,
    Restart,
    Restarted,
    RestartLimitExceeded,
    Supervisor,
)
from supervisors.testing import FakeClock


class Runs:
    """A child that records its runs and fails on the runs listed in `fail_on` (1-based)."""

    def __init__(self, stop_after: int, fail_on: tuple[int, ...] = ()) -> None:
        self.count = 0
        self.stop_after = stop_after
        self.fail_on = fail_on
        self.errors: list[Exception] = []
        self.done = anyio.Event()

    async def __call__(self) -> int:
        self.count += 1
        if self.count >= self.stop_after:
            self.done.set()
            await anyio.sleep_forever()
        if self.count in self.fail_on:
            self.errors.append(ValueError(self.count))
            raise self.errors[-1]
        return self.count


async def test_permanent_child_restarts_whenever_it_ends() -> None:
    """PERMANENT restarts after a normal exit and after an error."""
    runs = Runs(stop_after=4, fail_on=(2,))
    events: list[Event] = []
    clock = FakeClock()
    async with Supervisor(hooks=[events.append], clock=clock, max_restarts=10, shutdown_grace=0) as sup:
        handle = sup.start_soon(runs, restart=Restart.PERMANENT)
        await runs.done.wait()
        assert handle.restarts == 3
    restarted = [e for e in events if isinstance(e, Restarted)]
    assert [(e.reason, e.restarts_in_window) for e in restarted] == [
        ("exited", 1),
        ("error", 2),
        ("exited", 3),
    ]
    assert handle.state is ChildState.INTERRUPTED


async def test_transient_child_restarts_only_after_an_error() -> None:
    """TRANSIENT restarts after errors and finishes SUCCEEDED after a normal exit."""
    runs = Runs(stop_after=100, fail_on=(1, 2))
    async with Supervisor(max_restarts=10) as sup:
        handle = await sup.start_soon(runs, restart=Restart.TRANSIENT).wait()
    assert (handle.state, handle.result, handle.restarts) == (ChildState.SUCCEEDED, 3, 2)


async def test_temporary_child_is_never_restarted() -> None:
    """TEMPORARY (the default) finishes FAILED after its run fails."""
    runs = Runs(stop_after=100, fail_on=(1,))
    async with Supervisor() as sup:
        handle = await sup.start_soon(runs).wait()
    assert (handle.state, handle.restarts, runs.count) == (ChildState.FAILED, 0, 1)


async def test_restart_limit_escalates_unwrapped_with_last_error() -> None:
    """Too many restarts: GaveUp, the child FAILED, RestartLimitExceeded raised unwrapped from async with."""
    runs = Runs(stop_after=1000, fail_on=tuple(range(1, 1000)))
    events: list[Event] = []
    sup = Supervisor(hooks=[events.append], max_restarts=2, restart_window=60, clock=FakeClock())
    handles: list[ChildHandle] = []

    async def run() -> None:
        async with sup:
            handles.append(sup.start_soon(runs, restart=Restart.PERMANENT))
            handles.append(sup.start_soon(anyio.sleep_forever))
            await anyio.sleep_forever()

    with pytest.raises(RestartLimitExceeded) as info:
        await run()
    handle, bystander = handles
    error = info.value
    assert error.last_error is runs.errors[-1]
    assert error.__cause__ is runs.errors[-1]
    assert (error.child_name, error.restarts) == (handle.name, 3)
    assert runs.count == 3  # first run + 2 restarts, then no silent loop
    gave_up = [e for e in events if isinstance(e, GaveUp)]
    assert len(gave_up) == 1
    assert (gave_up[0].reason, gave_up[0].restarts, gave_up[0].error) == ("restart_limit", 3, runs.errors[-1])
    assert (handle.state, handle.reason, handle.error) == (
        ChildState.FAILED,
        "restart_limit",
        runs.errors[-1],
    )
    assert bystander.state.is_finished
    assert sup.state.value == "closed"


async def test_restarts_outside_the_window_do_not_count() -> None:
    """Restarts older than restart_window fall out of the sliding window."""
    clock = FakeClock()
    count = 0
    stop = anyio.Event()

    async def exits() -> None:
        nonlocal count
        count += 1
        clock.advance(10)  # each run lasts longer than the window
        if count == 6:
            stop.set()
            await anyio.sleep_forever()

    async with Supervisor(max_restarts=1, restart_window=5, clock=clock, shutdown_grace=0) as sup:
        handle = sup.start_soon(exits, restart=Restart.PERMANENT)
        await stop.wait()
        assert sup.statistics().restarts_in_window == 0  # the last restart is 10 s old by now
    assert handle.restarts == 5


async def test_escalation_from_a_child_supervisor_reaches_the_root() -> None:
    """A child supervisor's escalation cancels the shared task group and surfaces from the root."""

    async def crash() -> None:
        raise OSError("down")

    async def run() -> None:
        async with Supervisor(max_restarts=0, clock=FakeClock()) as root:
            root.child(Policy(name="sub")).start_soon(crash, restart=Restart.TRANSIENT)
            await anyio.sleep_forever()

    with pytest.raises(RestartLimitExceeded, match="restarted 1 times"):
        await run()
