"""Frozen statistics snapshots of supervisors and their limiters (what dashboards and APIs read)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from ._clock import Clock
    from ._lane import ThreadLane
    from ._runner import ChildEnvironment


@dataclass(frozen=True, slots=True)
class LimiterStatistics:
    """A capacity limiter at one instant."""

    total: float
    borrowed: int
    waiting: int


def limiter_statistics(limiter: anyio.CapacityLimiter) -> LimiterStatistics:
    """Snapshot `limiter` (safe outside an event loop too)."""
    stats = limiter.statistics()
    return LimiterStatistics(stats.total_tokens, stats.borrowed_tokens, stats.tasks_waiting)


@dataclass(frozen=True, slots=True)
class LaneStatistics:
    """A thread lane at one instant (the supervisor that owns it: the outermost one with a thread cap, or
    the root for the sync children no cap applies to)."""

    cap: float | None  # the most worker threads it will have at once (None: an unbounded lane not started)
    workers: int  # worker threads started so far (they stay until the supervisor closes)
    abandoned: int  # workers still running a body whose attempt was cancelled or timed out
    bounded: bool = True  # a thread cap's lane; False: the root's lane for sync children without one


@dataclass(frozen=True, slots=True)
class SupervisorStatistics:
    """A supervisor at one instant. Counters include the supervisor's child supervisors (roll-up);
    `children` breaks them down."""

    name: str
    state: str
    policy: str
    running: int  # attempts running now
    waiting: int  # children waiting for a limiter slot
    retrying: int  # children in a backoff delay
    restarts_in_window: int
    started: int  # children accepted by start_soon()/start()
    succeeded: int
    failed: int
    cancelled: int
    interrupted: int
    limiter: LimiterStatistics | None
    thread_limiter: LimiterStatistics | None
    children: tuple[SupervisorStatistics, ...]
    lane: LaneStatistics | None = None  # the thread lane this supervisor owns, if any


class RestartWindow:
    """The restarts of one supervisor's children that fall inside its sliding restart window."""

    __slots__ = ("_clock", "_times", "_window")

    def __init__(self, clock: Clock, window: float) -> None:
        self._clock = clock
        self._window = window
        self._times: deque[float] = deque()

    def record(self) -> int:
        """Count a restart now; return how many fall inside the window."""
        now = self._clock.now()
        self._times.append(now)
        self._prune(now)
        return len(self._times)

    def count(self, *, read_clock: bool = True) -> int:
        """How many restarts fall inside the window. Without `read_clock` (a closed supervisor may have no
        event loop to ask the time) the ones counted last stand."""
        if self._times and read_clock:
            self._prune(self._clock.now())
        return len(self._times)

    def _prune(self, now: float) -> None:
        horizon = now - self._window
        times = self._times
        while times and times[0] <= horizon:
            times.popleft()


_COUNTERS = ("running", "waiting", "retrying", "started", "succeeded", "failed", "cancelled", "interrupted")


def snapshot(
    name: str,
    state: str,
    policy: str,
    env: ChildEnvironment,
    restarts_in_window: int,
    limiter: anyio.CapacityLimiter | None,
    thread_limiter: anyio.CapacityLimiter | None,
    lane: ThreadLane | None,
    children: tuple[SupervisorStatistics, ...],
) -> SupervisorStatistics:
    """One supervisor's statistics: its env's counters with its child supervisors' rolled up."""
    counters = {counter: getattr(env, counter) for counter in _COUNTERS}
    for child in children:
        for counter in _COUNTERS:
            counters[counter] += getattr(child, counter)
        restarts_in_window += child.restarts_in_window
    return SupervisorStatistics(
        name=name,
        state=state,
        policy=policy,
        restarts_in_window=restarts_in_window,
        limiter=limiter_statistics(limiter) if limiter is not None else None,
        thread_limiter=_thread_limiter_statistics(thread_limiter, lane),
        children=children,
        lane=LaneStatistics(lane.cap, lane.workers, lane.abandoned, lane.bounded)
        if lane is not None
        else None,
        **counters,
    )


def _thread_limiter_statistics(
    limiter: anyio.CapacityLimiter | None, lane: ThreadLane | None
) -> LimiterStatistics | None:
    """The thread cap's figures. The supervisor that owns a lane caps its threads with the lane itself
    (its attempts take no limiter): the cap, the bodies running and the jobs queued."""
    if lane is not None and lane.bounded:
        assert lane.cap is not None
        return LimiterStatistics(lane.cap, lane.busy, lane.queued)
    return limiter_statistics(limiter) if limiter is not None else None
