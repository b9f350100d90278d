"""The clock the supervisors read time from and sleep on (replaceable by `testing.FakeClock`)."""

from __future__ import annotations

from asyncio import _get_running_loop
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
        # Read on every event (twice per child at least): asyncio's loop clock directly when one runs in
        # this thread, which is what anyio.current_time() returns there after a backend lookup that cost
        # about 3% of a task's time; anyio's answer otherwise (trio, including its mock clocks).
        loop = _get_running_loop()
        return loop.time() if loop is not None else anyio.current_time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"
