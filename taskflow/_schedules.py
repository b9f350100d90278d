"""Declared schedules: what `@task_manager.schedule(...)` records, the wall clock schedules read, and the
public view of a waiting one-off run (`ScheduledOnce`).

The scheduler (`_scheduler.py`) sleeps on a `ScheduleClock`: wall-clock time, aware UTC, because slots are
moments of the calendar. The runtime's other `clock=` (the supervisors' `Clock`) is the event loop's
monotonic clock for retries and backoff, and stays separate: tests control each on its own
(`taskflow.testing.ManualScheduleClock` for schedules).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import anyio

from ._exceptions import ConfigurationError
from ._models import isoformat
from ._triggers import Trigger, make_trigger

CatchUp = Literal["skip", "once"]
DEFAULT_MISFIRE_GRACE = 60.0
"""Seconds after its time within which a slot still counts as on time (else it was missed)."""
_LONGEST_SLEEP = 60.0


class ScheduleClock(Protocol):
    """The wall clock of the scheduler: `now()` is an aware UTC datetime; `sleep_until` returns at or after
    `when` (it may return early only if the caller checks `now()` again, which the scheduler does)."""

    def now(self) -> datetime: ...

    async def sleep_until(self, when: datetime) -> None: ...


class SystemScheduleClock:
    """The system's wall clock. Sleeps are at most a minute at a time, so a wall-clock step (NTP, a
    suspended laptop) delays a slot by no more than that."""

    __slots__ = ()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        # Checked again after each sleep: the wall clock may have stepped (bounded by _LONGEST_SLEEP).
        while (left := (when - datetime.now(UTC)).total_seconds()) > 0:  # noqa: ASYNC110  (a timed wait)
            await anyio.sleep(min(left, _LONGEST_SLEEP))

    def __repr__(self) -> str:
        return "SystemScheduleClock()"


@dataclass(frozen=True, slots=True)
class ScheduleDefinition:
    """One periodic schedule: its task (by name), trigger and policies (see `TaskRuntime.schedule`)."""

    name: str
    func: Callable[..., Any]
    trigger: Trigger
    run_on_startup: bool
    catch_up: CatchUp
    overlap: bool
    misfire_grace: float

    def describe(self) -> dict[str, Any]:
        """The declaration, JSON-safe (for the API)."""
        return {
            **self.trigger.describe(), "run_on_startup": self.run_on_startup, "catch_up": self.catch_up,
            "overlap": self.overlap, "misfire_grace": self.misfire_grace,
        }  # fmt: skip


def define_schedule(
    func: Callable[..., Any],
    *,
    name: str,
    every: object,
    cron: object,
    timezone: object,
    run_on_startup: object,
    catch_up: object,
    overlap: object,
    misfire_grace: object,
) -> ScheduleDefinition:
    """Check the decorator's arguments (ConfigurationError naming the bad one) and build the definition."""
    where = f"@schedule({name!r})"
    try:
        trigger = make_trigger(every, cron, timezone)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
    if catch_up not in ("skip", "once"):
        raise ConfigurationError(f"{where}: catch_up must be 'skip' or 'once', got {catch_up!r}")
    for option, value in (("run_on_startup", run_on_startup), ("overlap", overlap)):
        if not isinstance(value, bool):
            raise ConfigurationError(f"{where}: {option} must be True or False, got {value!r}")
    grace = DEFAULT_MISFIRE_GRACE if misfire_grace is None else misfire_grace
    if isinstance(grace, bool) or not isinstance(grace, int | float) or not math.isfinite(grace) or grace < 0:
        raise ConfigurationError(
            f"{where}: misfire_grace must be a number of seconds >= 0, got {misfire_grace!r}"
        )
    return ScheduleDefinition(
        name,
        func,
        trigger,
        bool(run_on_startup),
        catch_up,
        bool(overlap),
        float(grace),
    )


@dataclass(frozen=True, slots=True)
class ScheduledOnce:
    """A one-off run waiting for its time (fastapi-taskflow 0.12's name); its arguments are not shown.
    `queue` and `priority` are the ones given to `schedule_once` (None: the function's own)."""

    run_key: str
    func_name: str
    fire_at: datetime
    created_at: datetime | None = None
    tags: dict[str, str] = field(default_factory=dict)
    queue: str | None = None
    priority: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_key": self.run_key, "func_name": self.func_name, "fire_at": isoformat(self.fire_at),
            "created_at": isoformat(self.created_at), "tags": dict(self.tags), "queue": self.queue,
            "priority": self.priority,
        }  # fmt: skip
