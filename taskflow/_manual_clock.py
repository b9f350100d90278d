"""`ManualScheduleClock`: a wall clock for tests, moved only by the test (re-exported by `taskflow.testing`).

Pass it as `TaskManager(schedule_clock=clock)`; the scheduler then sleeps until the test moves time past a
slot with `advance()` or `set()`, which wakes every sleeper whose moment has come. Several task managers
may share one clock (several instances sharing a store see the same time).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio


class ManualScheduleClock:
    """A `ScheduleClock` whose time stands still until `advance()` / `set()` (call them on the event loop)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualScheduleClock needs an aware datetime (e.g. tzinfo=UTC)")
        self._now = start.astimezone(UTC)
        self._sleepers: list[tuple[datetime, anyio.Event]] = []

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, when: datetime) -> None:
        if when <= self._now:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        entry = (when, event)
        self._sleepers.append(entry)
        try:
            await event.wait()
        finally:
            if entry in self._sleepers:
                self._sleepers.remove(entry)

    @property
    def sleepers(self) -> int:
        """How many coroutines sleep on this clock now."""
        return len(self._sleepers)

    def advance(self, seconds: float | timedelta) -> None:
        """Move time forward and wake the sleepers whose moment has come."""
        step = seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds)
        if step < timedelta(0):
            raise ValueError(f"advance() needs a step >= 0, got {seconds!r}")
        self.set(self._now + step)

    def set(self, moment: datetime) -> None:
        """Jump to `moment` (not backwards) and wake the sleepers whose moment has come."""
        moment = moment.astimezone(UTC)
        if moment < self._now:
            raise ValueError("ManualScheduleClock never goes backwards")
        self._now = moment
        for when, event in list(self._sleepers):
            if when <= moment:
                event.set()

    def __repr__(self) -> str:
        return f"ManualScheduleClock({self._now.isoformat()}, sleepers={len(self._sleepers)})"
