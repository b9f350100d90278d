"""The clock the supervisors read time from and sleep on (replaceable by `testing.FakeClock`)."""

from __future__ import annotations

import asyncio
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
        # Read on every event: asyncio's loop clock directly when one runs in this thread (what
        # anyio.current_time() returns there, without its backend lookup); anyio's answer otherwise (trio,
        # including its mock clocks). docs/benchmarks.md has what each way costs.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return anyio.current_time()
        return loop.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"
