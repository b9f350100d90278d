"""`@task_manager.actor`: services started with the lifespan, restarted with backoff, escalation, stopping."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from supervisors.testing import FakeClock
from taskflow import ConfigurationError, InMemoryLogger, TaskManager
from taskflow._services import ActorStatistics


async def _until(manager: TaskManager, name: str, state: str) -> ActorStatistics:
    with anyio.fail_after(10):
        while True:
            stats = {s.name: s for s in manager.actor_statistics()}[name]
            if stats.state == state:
                return stats
            await anyio.sleep(0.005)


async def test_crashing_actor_restarts_with_backoff_then_gives_up(caplog: pytest.LogCaptureFixture) -> None:
    """A service that always fails is restarted after the policy's backoff, then given up on: logged,
    visible with its last error, and the app's on_give_up is called; the runtime keeps running."""
    clock = FakeClock()
    logger = InMemoryLogger()
    manager = TaskManager(
        clock=clock,
        loggers=[logger],
        config={"policies": {"poller": {"delay": 1, "backoff": 2, "max_restarts": 3, "restart_window": 60}}},
    )
    calls: list[int] = []
    gave_up: list[ActorStatistics] = []

    @manager.actor(policy="poller", on_give_up=gave_up.append)
    async def poll() -> None:
        calls.append(1)
        raise ConnectionError(f"down #{len(calls)}")

    caplog.set_level(logging.WARNING, logger="taskflow.actors")
    async with manager.running():
        stats = await _until(manager, "poll", "gave_up")
        assert manager.is_running
        await manager.flush_observers()
    assert len(calls) == 4
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert (stats.restarts, stats.last_error) == (3, "ConnectionError: down #4")
    assert [s.name for s in gave_up] == ["poll"] and gave_up[0].state == "gave_up"
    assert any("actor poll gave up: 4 restarts within 60 s" in r.getMessage() for r in caplog.records)
    events = [e for e in logger.log_events if e.func_name == "taskflow.actor.poll"]
    assert events and events[0].level == "error"


async def test_intensity_window_forgives_old_restarts() -> None:
    """Restarts older than the restart window do not count: a service failing slowly keeps running."""
    clock = FakeClock()
    manager = TaskManager(clock=clock)
    calls: list[int] = []
    stop = anyio.Event()

    # Each run waits 10 s on the fake clock, then fails: one restart per 10 s, window 5 s, max 1.
    @manager.actor(max_restarts=1, restart_window=5)
    async def slow() -> None:
        calls.append(1)
        if len(calls) >= 5:
            stop.set()
            await anyio.sleep_forever()
        await clock.sleep(10)
        raise RuntimeError("again")

    async with manager.running():
        with anyio.fail_after(10):
            await stop.wait()
        stats = manager.actor_statistics()[0]
        assert (stats.state, stats.restarts) == ("running", 4)
    assert manager.actor_statistics()[0].state == "stopped"


async def test_transient_actor_that_returns_is_finished() -> None:
    """A transient service that returns is not restarted; a permanent one is."""
    manager = TaskManager()
    runs = {"once": 0, "again": 0}
    done = anyio.Event()

    @manager.actor(restart="transient")
    async def once() -> None:
        runs["once"] += 1

    @manager.actor(restart="permanent", max_restarts=100)
    async def again() -> None:
        runs["again"] += 1
        if runs["again"] == 3:
            done.set()
            await anyio.sleep_forever()

    async with manager.running():
        await _until(manager, "once", "finished")
        with anyio.fail_after(10):
            await done.wait()
    assert runs == {"once": 1, "again": 3}
    assert {s.name: s.state for s in manager.actor_statistics()} == {"again": "stopped", "once": "finished"}


async def test_actor_is_cancelled_when_the_lifespan_ends() -> None:
    """A running service is cancelled when the lifespan ends, before the tasks drain, and runs its cleanup."""
    manager = TaskManager(shutdown_grace=30)
    events: list[str] = []

    @manager.actor()
    async def consume() -> None:
        events.append("started")
        try:
            await anyio.sleep_forever()
        finally:
            events.append("stopped")

    with anyio.fail_after(10):  # well within the 30 s grace: services are not drained
        async with manager.running():
            await _until(manager, "consume", "running")
            await anyio.wait_all_tasks_blocked()
    assert events == ["started", "stopped"]
    stats = manager.actor_statistics()[0]
    assert (stats.state, stats.restarts, stats.started_at is not None) == ("stopped", 0, True)


async def test_on_give_up_that_raises_stops_the_runtime() -> None:
    """The app decides: an on_give_up that raises takes the runtime (and the app's lifespan) down."""
    manager = TaskManager(clock=FakeClock())

    def stop_app(stats: ActorStatistics) -> None:
        raise RuntimeError(f"{stats.name} is down for good")

    @manager.actor(max_restarts=0, on_give_up=stop_app)
    async def broken() -> None:
        raise ValueError("no")

    async def run_until_stopped() -> None:
        with anyio.fail_after(10):
            async with manager.running():
                await anyio.sleep_forever()

    with pytest.raises(BaseExceptionGroup) as info:
        await run_until_stopped()
    assert info.group_contains(RuntimeError, match="broken is down for good", depth=None)


async def test_timeout_bounds_each_run() -> None:
    """The policy's timeout ends a run that takes too long; the service is restarted."""
    manager = TaskManager(clock=FakeClock(), config={"policies": {"t": {"timeout": 0.05, "max_restarts": 1}}})

    @manager.actor(policy="t")
    async def stuck() -> None:
        await anyio.sleep_forever()

    async with manager.running():
        stats = await _until(manager, "stuck", "gave_up")
    assert stats.last_error is not None and stats.last_error.startswith("TimeoutError")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"restart": "temporary"}, "restart must be 'permanent' or 'transient', got 'temporary'"),
        ({"restart": "sometimes"}, "restart must be 'permanent' or 'transient', got 'sometimes'"),
        ({"policy": "nope"}, "no policy named 'nope'"),
        ({"policy": 3}, "policy must be a Policy or a policy name, got 3"),
        ({"max_restarts": -1}, "max_restarts must be an int >= 0, got -1"),
        ({"restart_window": 0}, "restart_window must be a finite number > 0, got 0"),
        ({"on_give_up": "log"}, "on_give_up must be callable, got 'log'"),
    ],
)
def test_bad_actor_declarations_are_refused(kwargs: dict[str, Any], message: str) -> None:
    """Each bad @actor option raises ConfigurationError naming the actor and the option."""
    manager = TaskManager(config=False)

    async def svc() -> None: ...

    with pytest.raises(ConfigurationError, match=message):
        manager.actor(**kwargs)(svc)


def test_actor_must_be_async_and_unique() -> None:
    """Services are async functions; two functions cannot share a name."""
    manager = TaskManager(config=False)

    def sync() -> None: ...

    async def svc() -> None: ...

    async def other() -> None: ...

    with pytest.raises(ConfigurationError, match="needs an async function"):
        manager.actor()(sync)  # type: ignore[arg-type]
    manager.actor(name="svc")(svc)
    with pytest.raises(ConfigurationError, match="already an actor named 'svc'"):
        manager.actor(name="svc")(other)


def test_actor_statistics_before_start() -> None:
    """Declared services are listed before the lifespan starts, as new."""
    manager = TaskManager(config={"policies": {"p": {"max_restarts": 9, "restart_window": 2}}})

    @manager.actor(policy="p", restart="transient")
    async def svc() -> None: ...

    (stats,) = manager.actor_statistics()
    assert (stats.state, stats.restart, stats.policy, stats.max_restarts, stats.restart_window) == (
        "new", "transient", "p", 9, 2.0,
    )  # fmt: skip
