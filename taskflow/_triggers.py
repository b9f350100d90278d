"""When a periodic schedule's slots are: `Every` (a fixed interval, aligned to the Unix epoch in UTC) and
`Cron` (a cron expression evaluated in an explicit time zone, by `cronsim`).

A *slot* is one moment a schedule is due, an aware UTC datetime. Every instance computes the same slots
from the same declaration (that is what makes a slot claimable across instances), so `every=` slots are
aligned to the epoch, not to the moment a process started: `every=3600` is due on each full UTC hour.

Cron expressions are parsed by `cronsim` (healthchecks.io's parser: maintained, pure Python, no
dependencies, and it documents its daylight-saving behaviour, which follows Debian's cron): an expression
with a fixed minute and hour (`30 2 * * *`) runs once on a day whose local 02:30 does not exist (right
after the spring-forward jump) and once, at the first 02:30, on a day it occurs twice; expressions with `*`
or steps in the minute or hour fields follow real time in the zone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._exceptions import ConfigurationError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MISSED_COUNT_LIMIT = 10_000
"""Slots counted one by one between the last claimed slot and now; past this, the count says 'at least'."""


class Trigger(Protocol):
    """The slots of a schedule."""

    def latest(self, now: datetime) -> datetime:
        """The latest slot at or before `now`."""
        ...

    def next_after(self, moment: datetime) -> datetime:
        """The earliest slot strictly after `moment`."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-safe: `kind`, `expression` (what the API and dashboard show) and the parameters."""
        ...


@dataclass(frozen=True, slots=True)
class Every:
    """Slots every `microseconds`, counted from the Unix epoch (UTC)."""

    microseconds: int

    def latest(self, now: datetime) -> datetime:
        elapsed = (now - _EPOCH) // timedelta(microseconds=1)
        return _EPOCH + timedelta(microseconds=elapsed - elapsed % self.microseconds)

    def next_after(self, moment: datetime) -> datetime:
        return self.latest(moment) + timedelta(microseconds=self.microseconds)

    def describe(self) -> dict[str, Any]:
        seconds = self.microseconds / 1_000_000
        return {"kind": "every", "expression": f"every {seconds:g}s", "seconds": seconds}


class Cron:
    """Slots of a 5-field (or, with seconds first, 6-field) cron expression in the time zone `zone`."""

    __slots__ = ("_cronsim", "expression", "zone")

    def __init__(self, expression: str, zone: tzinfo) -> None:
        self._cronsim = _cronsim()
        self.expression = expression
        self.zone = zone
        try:
            self.next_after(datetime.now(UTC))  # parses, and finds that the expression ever matches
        except (self._cronsim.CronSimError, StopIteration) as exc:
            detail = str(exc) or "it never matches"
            raise ConfigurationError(
                f"cron={expression!r} is not a valid cron expression: {detail}"
            ) from None

    def latest(self, now: datetime) -> datetime:
        # cronsim's reverse iteration yields times strictly before its start: start one second later.
        start = now.astimezone(self.zone).replace(microsecond=0) + timedelta(seconds=1)
        found = next(self._cronsim.CronSim(self.expression, start, reverse=True))
        return found.astimezone(UTC)  # type: ignore[no-any-return]

    def next_after(self, moment: datetime) -> datetime:
        found = next(self._cronsim.CronSim(self.expression, moment.astimezone(self.zone)))
        return found.astimezone(UTC)  # type: ignore[no-any-return]

    def describe(self) -> dict[str, Any]:
        return {"kind": "cron", "expression": self.expression, "timezone": str(self.zone)}

    def __repr__(self) -> str:
        return f"Cron({self.expression!r}, {self.zone})"


def _cronsim() -> Any:
    try:
        import cronsim
    except ImportError:
        raise ImportError(
            "cron= schedules need the cronsim package: pip install 'anyio-taskflow[cron]'"
        ) from None
    return cronsim


def zone_named(name: object) -> tzinfo:
    """The IANA time zone `name` (zoneinfo); ConfigurationError for anything else."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"timezone must be an IANA zone name such as 'Europe/Paris', got {name!r}")
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"timezone {name!r} is not a known IANA time zone") from None


def make_trigger(every: object, cron: object, timezone: object) -> Trigger:
    """The trigger of `@schedule(every=... | cron=..., timezone=...)`; ConfigurationError when not exactly
    one of `every` and `cron` is given, or one is not valid."""
    if (every is None) == (cron is None):
        raise ConfigurationError("@schedule needs exactly one of every= (seconds or a timedelta) and cron=")
    zone = zone_named(timezone)
    if cron is not None:
        if not isinstance(cron, str) or not cron.strip():
            raise ConfigurationError(f"cron must be a cron expression string, got {cron!r}")
        return Cron(" ".join(cron.split()), zone)
    seconds = every.total_seconds() if isinstance(every, timedelta) else every
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        raise ConfigurationError(f"every must be a number of seconds or a timedelta, got {every!r}")
    microseconds = round(seconds * 1_000_000)
    if microseconds < 1000:
        raise ConfigurationError(f"every must be at least 0.001 seconds, got {every!r}")
    return Every(microseconds)


def count_between(trigger: Trigger, after: datetime, before: datetime) -> int:
    """How many slots lie strictly between `after` and `before` (at most `_MISSED_COUNT_LIMIT`)."""
    if isinstance(trigger, Every):
        gap = (before - after) // timedelta(microseconds=1)
        return max(0, math.ceil(gap / trigger.microseconds) - 1)
    count, slot = 0, trigger.next_after(after)
    while slot < before and count < _MISSED_COUNT_LIMIT:
        count += 1
        slot = trigger.next_after(slot)
    return count
