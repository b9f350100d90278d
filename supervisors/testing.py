"""Helpers for testing code that uses `supervisors`: a fake clock and a mode that skips backoff waits."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import anyio.lowlevel

from ._config import CONFIG as _CONFIG

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["FakeClock", "set_testing", "testing_mode"]


class FakeClock:
    """A `Clock` whose sleeps return at once, advancing its time and recording each requested delay.

    Pass it as `Supervisor(clock=...)` / `run_supervised(clock=...)`; then `clock.sleeps` lists the
    backoff delays exactly and `now()` drives event timestamps and restart windows. Per-attempt timeouts
    and shutdown grace periods still use real time.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._now += seconds
        await anyio.lowlevel.checkpoint()  # still a cancellation point, like a real sleep

    def advance(self, seconds: float) -> None:
        """Move time forward (e.g. past a restart window) without sleeping."""
        if seconds < 0:
            raise ValueError(f"FakeClock.advance() needs seconds >= 0, got {seconds!r}")
        self._now += seconds

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r}, sleeps={len(self.sleeps)})"


def set_testing(enabled: bool) -> None:
    """Turn testing mode on or off process-wide: backoff waits are skipped (delays are still computed and
    reported in `RetryScheduled`)."""
    _CONFIG.testing = bool(enabled)


@contextlib.contextmanager
def testing_mode(enabled: bool = True) -> Iterator[None]:  # noqa: PT028  (not a test: named by the spec)
    """Testing mode for the duration of a `with` block; the previous setting is restored afterwards."""
    previous = _CONFIG.testing
    _CONFIG.testing = bool(enabled)
    try:
        yield
    finally:
        _CONFIG.testing = previous


# Its name starts with "test": keep pytest from collecting it when a test module imports it.
testing_mode.__test__ = False  # type: ignore[attr-defined]
