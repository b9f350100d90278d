"""Slot computation (every=, cron= with time zones and DST) and the decorator's validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from taskflow import ConfigurationError, TaskManager
from taskflow._triggers import count_between, make_trigger

T = datetime(2024, 5, 1, 12, 0, 30, 500_000, tzinfo=UTC)


def test_every_slots_are_aligned_to_the_epoch() -> None:
    trigger = make_trigger(60, None, "UTC")
    assert trigger.latest(T) == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert trigger.next_after(T) == datetime(2024, 5, 1, 12, 1, tzinfo=UTC)
    on_slot = datetime(2024, 5, 1, 12, 1, tzinfo=UTC)
    assert trigger.latest(on_slot) == on_slot and trigger.next_after(on_slot) == on_slot + timedelta(
        minutes=1
    )
    assert make_trigger(timedelta(hours=1), None, "UTC").latest(T) == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert make_trigger(0.25, None, "UTC").next_after(T) == T + timedelta(seconds=0.25)
    assert count_between(trigger, datetime(2024, 5, 1, 11, 55, tzinfo=UTC), trigger.latest(T)) == 4


def test_cron_slots_in_a_time_zone() -> None:
    trigger = make_trigger(None, "30 9 * * 1-5", "Europe/Paris")  # 09:30 Paris = 07:30 UTC in May
    assert trigger.next_after(T) == datetime(2024, 5, 2, 7, 30, tzinfo=UTC)
    assert trigger.latest(T) == datetime(2024, 5, 1, 7, 30, tzinfo=UTC)
    friday = datetime(2024, 5, 3, 8, 0, tzinfo=UTC)
    assert trigger.next_after(friday) == datetime(2024, 5, 6, 7, 30, tzinfo=UTC)  # skips the weekend
    assert count_between(trigger, datetime(2024, 4, 29, 7, 30, tzinfo=UTC), friday) == 4


def test_cron_across_daylight_saving_changes() -> None:
    """Debian cron's rules: a fixed time skipped by spring-forward runs right after the jump; a fixed time
    in the repeated hour runs once."""
    paris = ZoneInfo("Europe/Paris")
    spring = make_trigger(None, "30 2 * * *", "Europe/Paris")  # 2024-03-31 02:30 does not exist in Paris
    slot = spring.next_after(datetime(2024, 3, 30, 12, tzinfo=UTC))
    assert slot == datetime(2024, 3, 31, 3, 0, tzinfo=paris).astimezone(UTC)  # right after the jump
    autumn = make_trigger(None, "30 2 * * *", "Europe/Paris")  # 2024-10-27 02:30 happens twice
    first = autumn.next_after(datetime(2024, 10, 26, 12, tzinfo=UTC))
    assert first == datetime(2024, 10, 27, 0, 30, tzinfo=UTC)  # the first 02:30 (summer time)
    assert autumn.next_after(first) == datetime(2024, 10, 28, 1, 30, tzinfo=UTC)  # once that day


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "exactly one of every"),
        ({"every": 60, "cron": "* * * * *"}, "exactly one of every"),
        ({"every": 0}, "at least 0.001"),
        ({"every": "60"}, "number of seconds"),
        ({"cron": "61 * * * *"}, "not a valid cron"),
        ({"cron": "* * *"}, "not a valid cron"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "not a known IANA"),
        ({"every": 60, "catch_up": "all"}, "catch_up"),
        ({"every": 60, "overlap": "yes"}, "overlap"),
        ({"every": 60, "misfire_grace": -1}, "misfire_grace"),
    ],
)
def test_bad_declarations_fail_at_decoration(options: dict[str, object], message: str) -> None:
    tm = TaskManager()
    with pytest.raises(ConfigurationError, match=message):

        @tm.schedule(**options)  # type: ignore[arg-type]
        async def job() -> None: ...


def test_a_schedule_name_is_declared_once() -> None:
    tm = TaskManager()

    @tm.schedule(every=60, name="report")
    async def job() -> None: ...

    with pytest.raises(ConfigurationError, match="already declared"):

        @tm.schedule(every=30, name="report")
        async def other() -> None: ...


def test_cron_without_cronsim_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "cronsim", None)
    with pytest.raises(ImportError, match=r"anyio-taskflow\[cron\]"):
        make_trigger(None, "* * * * *", "UTC")
