"""Supervisor lifecycle: start()/start_soon(), misuse errors, child supervisors, statistics snapshots."""

from __future__ import annotations

import dataclasses

import anyio
import pytest
from anyio.abc import TaskStatus

from supervisors import (
    ChildHandle,
    ChildState,
    Policy,
    Supervisor,
    SupervisorClosed,
    SupervisorState,
    SupervisorStateError,
)
from supervisors.testing import FakeClock


async def test_start_soon_returns_at_once() -> None:
    """start_soon returns a PENDING handle before the child has run at all."""
    ran = []

    async def child() -> None:
        ran.append(1)

    async with Supervisor() as sup:
        handle = sup.start_soon(child)
        assert (handle.state, ran) == (ChildState.PENDING, [])
    assert ran == [1]


async def test_start_waits_for_the_started_handshake() -> None:
    """start() returns once the child called task_status.started(value), exposing started_value."""
    stop = anyio.Event()

    async def server(port: int, *, task_status: TaskStatus[object]) -> str:
        task_status.started(f"listening on {port}")
        await stop.wait()
        return "stopped"

    async with Supervisor() as sup:
        handle = await sup.start(server, 8080)
        assert handle.started_value == "listening on 8080"
        assert handle.state is ChildState.RUNNING
        stop.set()
    assert handle.result == "stopped"


async def test_start_retries_before_started_and_raises_when_attempts_run_out() -> None:
    """Retries apply before started(); if the child never gets there, start() raises its last error."""
    errors: list[ValueError] = []

    async def never_starts(*, task_status: TaskStatus[object]) -> None:
        errors.append(ValueError(len(errors)))
        raise errors[-1]

    async with Supervisor(Policy(retries=2), clock=FakeClock()) as sup:
        with pytest.raises(ValueError, match=r"^2$") as info:
            await sup.start(never_starts)
    assert info.value is errors[-1]
    assert len(errors) == 3


async def test_start_rejects_sync_functions() -> None:
    """start() needs an async function accepting task_status."""
    async with Supervisor() as sup:
        with pytest.raises(TypeError, match="start\\(\\) needs an async function"):
            await sup.start(print)


async def test_entering_twice_is_an_error() -> None:
    """A supervisor can be entered once only."""
    sup = Supervisor()
    async with sup:
        with pytest.raises(SupervisorStateError, match="more than once"):
            await sup.__aenter__()
    with pytest.raises(SupervisorStateError, match="more than once"):
        await sup.__aenter__()


async def test_start_soon_before_enter_is_an_error() -> None:
    """start_soon before `async with` raises SupervisorStateError (not SupervisorClosed)."""
    sup = Supervisor()
    with pytest.raises(SupervisorStateError, match="use `async with`") as info:
        sup.start_soon(anyio.lowlevel.checkpoint)
    assert not isinstance(info.value, SupervisorClosed)
    with pytest.raises(SupervisorStateError):
        await sup.shutdown()


async def test_start_soon_after_shutdown_is_closed() -> None:
    """Once shutdown began, start_soon and start raise SupervisorClosed (a RuntimeError too)."""
    async with Supervisor() as sup:
        await sup.shutdown()
        with pytest.raises(SupervisorClosed, match="after shutdown began"):
            sup.start_soon(anyio.lowlevel.checkpoint)
        with pytest.raises(RuntimeError):
            await sup.start(anyio.lowlevel.checkpoint)
    with pytest.raises(SupervisorClosed):
        sup.start_soon(anyio.lowlevel.checkpoint)


async def test_child_supervisor_cannot_be_entered_and_is_cached_by_name() -> None:
    """child() is cached by name; a different policy under a used name or entering a child is an error."""
    async with Supervisor() as root:
        a = root.child(Policy(name="a", retries=1))
        assert root.child(Policy(name="a", retries=1)) is a
        with pytest.raises(ValueError, match="different policy"):
            root.child(Policy(name="a", retries=2))
        assert a.state is SupervisorState.RUNNING
        with pytest.raises(SupervisorStateError, match="root's task group"):
            await a.__aenter__()
    assert a.state is SupervisorState.CLOSED


async def test_child_created_before_enter_becomes_usable_with_the_root() -> None:
    """A child supervisor made before entering the root starts running when the root is entered."""
    root = Supervisor()
    child = root.child(Policy(name="early"))
    assert child.state is SupervisorState.NEW
    async with root:
        handle = child.start_soon(anyio.lowlevel.checkpoint)
    assert handle.state is ChildState.SUCCEEDED


async def test_statistics_snapshots_before_during_and_after() -> None:
    """statistics() returns frozen snapshots that track the lifecycle and roll children up."""
    gate = anyio.Event()

    async def fails() -> None:
        raise ValueError

    sup = Supervisor(Policy(name="p", max_concurrency=2, max_threads=3))
    before = sup.statistics()
    assert (before.state, before.policy, before.started, before.running) == ("new", "p", 0, 0)
    assert before.limiter is not None
    assert before.limiter.total == 2
    assert before.thread_limiter is not None
    assert before.thread_limiter.total == 3
    async with sup:
        sub = sup.child(Policy(name="sub"))
        await sub.start_soon(fails).wait()
        handles: list[ChildHandle] = [sup.start_soon(gate.wait) for _ in range(3)]
        await anyio.wait_all_tasks_blocked()
        during = sup.statistics()
        assert (during.state, during.running, during.waiting, during.started) == ("running", 2, 1, 4)
        assert during.failed == 1
        assert during.children[0].failed == 1
        assert during.limiter is not None
        assert (during.limiter.borrowed, during.limiter.waiting) == (2, 1)
        with pytest.raises(dataclasses.FrozenInstanceError):
            during.running = 0  # type: ignore[misc]
        gate.set()
    after = sup.statistics()
    assert (after.state, after.running, after.succeeded, after.failed) == ("closed", 0, 3, 1)
    assert before.state == "new"  # snapshots don't change afterwards
    assert all(h.state is ChildState.SUCCEEDED for h in handles)


async def test_body_error_interrupts_children_and_propagates() -> None:
    """If the `async with` body raises, children are interrupted at once and the error propagates."""
    sup = Supervisor(shutdown_grace=60)
    handles: list[ChildHandle] = []

    async def run() -> None:
        async with sup:
            handles.append(sup.start_soon(anyio.sleep_forever))
            await anyio.wait_all_tasks_blocked()
            raise KeyError("body")

    with pytest.raises(KeyError, match="body"):
        await run()
    [handle] = handles
    assert (handle.state, handle.reason) == (ChildState.INTERRUPTED, "shutdown")
    assert sup.shutdown_report is not None
    assert sup.shutdown_report.grace == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shutdown_grace": -1}, "shutdown_grace"),
        ({"checkpoint_timeout": float("nan")}, "checkpoint_timeout"),
        ({"restart_window": 0}, "restart_window"),
        ({"max_restarts": -1}, "max_restarts"),
    ],
)
def test_supervisor_validates_its_arguments(kwargs: dict[str, float], message: str) -> None:
    """Bad supervisor settings raise ValueError naming the argument."""
    with pytest.raises(ValueError, match=message):
        Supervisor(**kwargs)  # type: ignore[arg-type]


async def test_system_clock_reads_the_running_loops_time() -> None:
    """SystemClock.now() is the event loop's clock on either backend (what anyio.current_time() says)."""
    import anyio

    from supervisors import SystemClock

    before = anyio.current_time()
    now = SystemClock().now()
    after = anyio.current_time()
    assert before <= now <= after
