"""Frozen statistics snapshots of supervisors and their limiters (what dashboards and APIs read)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from ._supervisor import Supervisor


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


def prune_restarts(times: deque[float], horizon: float) -> None:
    """Drop restart times at or before `horizon` from the sliding window."""
    while times and times[0] <= horizon:
        times.popleft()


_COUNTERS = ("running", "waiting", "retrying", "started", "succeeded", "failed", "cancelled", "interrupted")


def snapshot(sup: Supervisor) -> SupervisorStatistics:
    """Snapshot `sup` and its child supervisors, rolling the children's counters up into the parent's."""
    children = tuple(snapshot(child) for child in sup._children.values())
    counters = {name: getattr(sup._site, name) for name in _COUNTERS}
    times = sup._restart_times
    if times and sup.state.value != "closed":  # a closed supervisor may have no event loop to ask the time
        prune_restarts(times, sup._clock.now() - sup.restart_window)
    restarts = len(times)
    for child in children:
        for name in _COUNTERS:
            counters[name] += getattr(child, name)
        restarts += child.restarts_in_window
    limiter, thread_limiter = sup._limiter, sup._thread_limiter
    return SupervisorStatistics(
        name=sup.name,
        state=sup.state.value,
        policy=sup.policy.name,
        restarts_in_window=restarts,
        limiter=limiter_statistics(limiter) if limiter is not None else None,
        thread_limiter=limiter_statistics(thread_limiter) if thread_limiter is not None else None,
        children=children,
        **counters,
    )
