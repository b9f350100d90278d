"""`TaskCounters`: the running totals a metrics exposition needs, kept by a sink of task changes.

Per task function: finished tasks by final status, attempts and retries they took, and a histogram of their
durations (fixed buckets, cumulative as Prometheus expects when read). Counted once per task, as it settles:
a few dictionary updates. Nothing here imports a metrics library; `taskflow.metrics` turns
`statistics()` into Prometheus metric families.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._lifecycle import ChangeKind, TaskChange
from ._models import TaskRecord, TaskStatus

__all__ = ["DURATION_BUCKETS", "FunctionCounters", "TaskCounters", "TaskCountersStatistics"]

DURATION_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
"""Upper bounds (seconds) of the duration histogram's buckets; a last one, +Inf, takes the rest."""

_REQUEUED = ChangeKind.REQUEUED


@dataclass(frozen=True, slots=True)
class FunctionCounters:
    """One task function's totals. `finished` maps a final status (its value) to a count; `buckets[i]` counts
    durations up to `DURATION_BUCKETS[i]` (not cumulative; the last item is the +Inf bucket)."""

    finished: Mapping[str, int]
    attempts: int
    retries: int
    buckets: tuple[int, ...]
    duration_sum: float
    duration_count: int


@dataclass(frozen=True, slots=True)
class TaskCountersStatistics:
    """A snapshot of `TaskCounters`: `functions` maps a task function's name to its totals."""

    functions: Mapping[str, FunctionCounters]


class _Function:
    __slots__ = ("attempts", "buckets", "duration_count", "duration_sum", "finished", "retries")

    def __init__(self) -> None:
        self.finished: dict[str, int] = {}
        self.attempts = 0
        self.retries = 0
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)
        self.duration_sum = 0.0
        self.duration_count = 0


class TaskCounters:
    """The sink that counts settled tasks per function (see the module docstring)."""

    def __init__(self) -> None:
        self._functions: dict[str, _Function] = {}

    @staticmethod
    def wants(kind: ChangeKind, status: TaskStatus) -> bool:
        # A task settles once: moved to a terminal state, or adopted from a lost instance as INTERRUPTED.
        return kind is not _REQUEUED and kind is not ChangeKind.UPDATED and status.is_terminal

    def take(self, changes: Sequence[TaskChange]) -> None:
        for kind, _, previous, status, record, _ in changes:
            if not status.is_terminal or (previous is not None and previous.is_terminal) or kind is _REQUEUED:
                continue
            self.count(record, status, record.duration)

    def count(self, record: TaskRecord, status: TaskStatus, duration: float | None) -> None:
        """Count one task that settled in `status` after `duration` seconds (the settlement calls this with
        the duration it already has, rather than this being a sink of its own)."""
        counts = self._functions.get(record.func_name)
        if counts is None:
            counts = self._functions[record.func_name] = _Function()
        value = status._value_
        counts.finished[value] = counts.finished.get(value, 0) + 1
        counts.attempts += len(record.attempts)
        counts.retries += record.retries_used
        if duration is not None:
            counts.buckets[bisect.bisect_left(DURATION_BUCKETS, duration)] += 1
            counts.duration_sum += duration
            counts.duration_count += 1

    def statistics(self) -> TaskCountersStatistics:
        """A frozen snapshot of every function's totals."""
        return TaskCountersStatistics(
            {
                name: FunctionCounters(
                    dict(c.finished),
                    c.attempts,
                    c.retries,
                    tuple(c.buckets),
                    c.duration_sum,
                    c.duration_count,
                )
                for name, c in list(self._functions.items())
            }
        )
