"""The public schedule methods of `TaskRuntime` (and so of `TaskManager`): `@schedule`, `schedule_once`,
`cancel_scheduled`, `list_scheduled`, `schedules`, `pause_schedule`, `resume_schedule`, `run_schedule_now`.

Names follow fastapi-taskflow 0.12 where it has them (docs/migration.md maps the rest); the behaviour is
`_scheduler.py`'s: exactly one run per slot across the instances sharing a store, missed slots by policy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from supervisors import Policy

from ._codec import encode_call
from ._config import UNSET
from ._exceptions import ConfigurationError
from ._models import isoformat, new_task_id, utcnow
from ._process_call import check_call
from ._queues import UnknownQueue
from ._registry import RetryOn, callable_name
from ._schedules import CatchUp, ScheduledOnce, define_schedule
from ._services import define_actor
from .stores import OneOffEntry

if TYPE_CHECKING:
    from ._encryption import ArgsCipher
    from ._launcher import Launcher
    from ._registry import TaskRegistry
    from ._scheduler import Scheduler
    from ._services import Services

F = TypeVar("F", bound=Callable[..., Any])
MAX_RUN_KEY = 200


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """One periodic schedule as `schedules()` reports it: its declaration, when it is next due, the last
    slot accounted for, the task id of its latest run, whether it is paused, and the slots skipped."""

    name: str
    trigger: dict[str, Any]
    next_run: datetime
    last_slot: datetime | None
    last_run_id: str | None
    paused: bool
    skipped: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "trigger": dict(self.trigger), "next_run": isoformat(self.next_run),
            "last_slot": isoformat(self.last_slot), "last_run_id": self.last_run_id, "paused": self.paused,
            "skipped": self.skipped,
        }  # fmt: skip


def fire_time(at: object, delay: object, now: datetime) -> datetime:
    """The aware UTC time of `at=` (naive means UTC, as in fastapi-taskflow) or `delay=` (seconds or a
    timedelta, >= 0); exactly one of them. ValueError / TypeError saying what is wrong."""
    if (at is None) == (delay is None):
        raise TypeError("schedule_once() needs exactly one of at= (a datetime) and delay= (seconds)")
    if at is not None:
        if not isinstance(at, datetime):
            raise TypeError(f"at must be a datetime, got {type(at).__name__}")
        return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    seconds = delay.total_seconds() if isinstance(delay, timedelta) else delay
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        raise TypeError(f"delay must be a number of seconds or a timedelta, got {delay!r}")
    if seconds < 0:
        raise ValueError(f"delay must be >= 0 seconds, got {delay!r}")
    return now + timedelta(seconds=seconds)


class ScheduleApi:
    """Mixed into `TaskRuntime`, which supplies these collaborators."""

    scheduler: Scheduler
    services: Services
    registry: TaskRegistry
    _cipher: ArgsCipher | None
    launcher: Launcher
    task: Callable[..., Callable[[F], F]]

    def _check_queue(self, queue: object, where: str) -> None:
        """UnknownQueue (a ConfigurationError, so a ValueError) unless `queue` names a declared queue."""
        if not isinstance(queue, str):
            raise TypeError(f"{where}: queue must be a str, got {type(queue).__name__}")
        queues = self.launcher.queues
        if queues is None:
            raise UnknownQueue(f"{where}: no queue named {queue!r} (no queue is declared)")
        try:
            queues.check_name(queue)
        except UnknownQueue as exc:
            raise UnknownQueue(f"{where}: {exc}") from None

    def _ensure_scheduler(self) -> None:
        # The scheduler actor is declared with the first schedule: an app without schedules has no actor.
        if not any(s.name == "taskflow.scheduler" for s in self.services.statistics()):
            self.services.declare(
                define_actor(
                    self.scheduler.run, name="taskflow.scheduler", restart="permanent", policy=None,
                    named=None,
                    max_restarts=None, restart_window=None, on_give_up=None,
                )
            )  # fmt: skip

    def schedule(
        self,
        *,
        every: float | timedelta | None = None,
        cron: str | None = None,
        run_on_startup: bool = False,
        timezone: str = "UTC",
        catch_up: CatchUp = "skip",
        overlap: bool = False,
        misfire_grace: float | None = None,
        name: str | None = None,
        retries: int = UNSET,
        delay: float = UNSET,
        backoff: float = UNSET,
        max_delay: float | None = UNSET,
        jitter: float = UNSET,
        timeout: float | None = UNSET,
        retry_on: RetryOn = UNSET,
        policy: Policy | str | None = None,
        requeue_on_interrupt: bool = False,
        executor: str | None = None,
        queue: str | None = None,
        priority: int = 0,
    ) -> Callable[[F], F]:
        """Run the decorated function (no arguments) on every slot of `every=` (seconds or a timedelta,
        aligned to the Unix epoch in UTC) or `cron=` (evaluated in `timezone`), exactly once per slot across
        the instances sharing a store. See docs/schedules.md for `catch_up`, `overlap`, `misfire_grace` and
        `run_on_startup`; the retry keywords, `policy`, `executor`, `queue` and `priority` are `@task`'s: the
        runs wait in that queue with that priority like any task (a full queue REJECTS the slot's run). The
        function is also declared as a task (`persist=True`: a run whose instance is lost before it starts is
        run by a survivor) and is returned unchanged."""
        options = {"retries": retries, "delay": delay, "backoff": backoff, "max_delay": max_delay,
                   "jitter": jitter, "timeout": timeout, "retry_on": retry_on}  # fmt: skip

        def decorator(func: F) -> F:
            schedule_name = name if name is not None else callable_name(func)
            definition = define_schedule(
                func, name=schedule_name, every=every, cron=cron, timezone=timezone,
                run_on_startup=run_on_startup, catch_up=catch_up, overlap=overlap,
                misfire_grace=misfire_grace,
            )  # fmt: skip
            if schedule_name in self.scheduler.definitions:
                raise ConfigurationError(f"a schedule named {schedule_name!r} is already declared")
            if queue is not None:  # before anything is declared: the error names the schedule
                try:
                    self._check_queue(queue, f"@schedule({schedule_name!r})")
                except TypeError as exc:
                    raise ConfigurationError(str(exc)) from None
            self.task(
                name=schedule_name, persist=True, requeue_on_interrupt=requeue_on_interrupt, policy=policy,
                executor=executor, queue=queue, priority=priority,
                **{key: value for key, value in options.items() if value is not UNSET},
            )(func)  # fmt: skip
            self._ensure_scheduler()
            self.scheduler.declare(definition)
            return func

        return decorator

    async def schedule_once(
        self,
        func: Callable[..., Any],
        /,
        *args: Any,
        at: datetime | None = None,
        delay: float | timedelta | None = None,
        run_key: str | None = None,
        run_at: datetime | None = None,
        tags: dict[str, str] | None = None,
        queue: str | None = None,
        priority: int | None = None,
        **kwargs: Any,
    ) -> str:
        """Run `func(*args, **kwargs)` once, at `at` (`run_at` is fastapi-taskflow 0.12's name for it) or
        after `delay` seconds; returns its run key. Stored until it runs (it survives restarts) and fired by
        exactly one instance sharing the store. The same `run_key` again reschedules it while it waits. The
        arguments must be storable (`taskflow.register_type` for your own types); encrypted with a key.
        `queue` / `priority` place the run as `add_task`'s do (default: the function's); an unknown queue is
        a ValueError now, a full queue at fire time makes the run REJECTED (docs/schedules.md). A process
        task's arguments must pickle: TaskArgumentError now, before anything is stored."""
        if run_at is not None:
            if at is not None:
                raise TypeError("give at= or its alias run_at=, not both")
            at = run_at
        if not callable(func):
            raise TypeError(f"schedule_once() needs a callable, got {func!r}")
        if run_key is None:
            run_key = new_task_id()
        elif not isinstance(run_key, str) or not 0 < len(run_key) <= MAX_RUN_KEY:
            raise ValueError(f"run_key must be a string of 1 to {MAX_RUN_KEY} characters")
        if tags is not None and not (
            isinstance(tags, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items())
        ):
            raise TypeError("tags must be a dict of str to str")
        if queue is not None:
            self._check_queue(queue, "schedule_once()")
        if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
            raise TypeError(f"priority must be an int, got {type(priority).__name__}")
        when = fire_time(at, delay, self.scheduler.clock.now())
        definition = self.registry.definition_for(func)
        func_name = definition.name
        if definition.executor == "process":  # as add_task: a worker gets the call as pickles
            check_call(func, func_name, args, kwargs)
        cipher = self._cipher
        if cipher is not None:
            call, payload = "", cipher.encrypt_call(args, kwargs)
        else:
            call, payload = encode_call(args, kwargs), None  # TypeError naming an argument it cannot store
        self._ensure_scheduler()
        entry = OneOffEntry(run_key, func_name, when, call, payload, dict(tags or {}), utcnow(),
                            queue=queue, priority=priority)  # fmt: skip
        await self.scheduler.put_once(entry)
        return run_key

    async def cancel_scheduled(self, run_key: str) -> bool:
        """Cancel a waiting one-off run; False when there is none (already run, starting, or unknown)."""
        return await self.scheduler.cancel_once(run_key)

    async def list_scheduled(self, *, limit: int = 1000) -> list[ScheduledOnce]:
        """The waiting one-off runs, soonest first (their arguments are not shown)."""
        entries = await self.scheduler.list_once(limit=limit)
        return [
            ScheduledOnce(e.run_key, e.func_name, e.fire_at, e.created_at, dict(e.tags), e.queue, e.priority)
            for e in entries
        ]

    async def schedules(self) -> list[ScheduleInfo]:
        """Every periodic schedule, by name, with its stored state (shared by the instances of a store)."""
        scheduler = self.scheduler
        states = await scheduler.states()
        infos = []
        for schedule_name, state in states.items():
            definition = scheduler.definitions[schedule_name]
            infos.append(
                ScheduleInfo(
                    schedule_name, definition.describe(), scheduler.next_run(definition, state),
                    state.last_slot, state.last_run_id, state.paused, state.skipped,
                )
            )  # fmt: skip
        return infos

    async def pause_schedule(self, name: str) -> None:
        """Pause a periodic schedule (on every instance sharing the store): its slots are skipped."""
        await self.scheduler.set_paused(name, True)

    async def resume_schedule(self, name: str) -> None:
        """Resume a paused schedule from its next slot (the slots skipped while paused are not caught up)."""
        await self.scheduler.set_paused(name, False)

    async def run_schedule_now(self, name: str) -> str:
        """Run the schedule's task now, as an extra run (not a slot); its task id. InvalidTaskState while a
        run of it is in progress, unless it was declared with `overlap=True`. The run waits in the
        schedule's queue; refused there (full), it is REJECTED and its id is still returned."""
        return (await self.scheduler.run_now(name)).task_id
