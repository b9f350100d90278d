"""The clock the supervisors read time from and sleep on (replaceable by `testing.FakeClock`)."""

from __future__ import annotations

from typing import Protocol

import anyio


class Clock(Protocol):
    """Source of event timestamps, restart-window time and backoff sleeps."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The event loop's clock: `anyio.current_time()` and `anyio.sleep()`."""

    __slots__ = ()

    def now(self) -> float:
        return anyio.current_time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"
