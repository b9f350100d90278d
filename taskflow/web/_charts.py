"""The dashboard's chart data: outcomes per time bucket and per-function run statistics.

Fed by the change bus with each finished task (on the event loop, O(1) per task), read at most about once a
second to build the `charts` part of the stream's metrics. Memory is bounded: a fixed number of time
buckets, a bounded sample of durations per function, and a bounded set of recently counted task ids (a
task is counted once, however many change events it produces after it finished).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from typing import Any

from .._models import TaskRecord, TaskStatus

BUCKET_SECONDS = 10
BUCKETS = 60  # ten minutes of history
DURATION_SAMPLE = 512
_REMEMBERED = 8192


def percentile(ordered: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of an already sorted list (None when empty)."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class FunctionStats:
    """Runs of one task function since the app started."""

    __slots__ = ("cancelled", "failed", "interrupted", "max", "min", "recent", "runs", "success", "total")

    def __init__(self) -> None:
        self.runs = self.success = self.failed = self.cancelled = self.interrupted = 0
        self.total = 0.0
        self.min: float | None = None
        self.max: float | None = None
        self.recent: deque[float] = deque(maxlen=DURATION_SAMPLE)

    def add(self, status: TaskStatus, duration: float | None) -> None:
        """Count one finished run."""
        self.runs += 1
        if status is TaskStatus.SUCCESS:
            self.success += 1
        elif status is TaskStatus.FAILED:
            self.failed += 1
        elif status is TaskStatus.CANCELLED:
            self.cancelled += 1
        else:
            self.interrupted += 1
        if duration is not None and status in (TaskStatus.SUCCESS, TaskStatus.FAILED):
            self.total += duration
            self.recent.append(duration)
            self.min = duration if self.min is None else min(self.min, duration)
            self.max = duration if self.max is None else max(self.max, duration)

    def to_dict(self) -> dict[str, Any]:
        """JSON form; durations in milliseconds, p95 over the most recent runs."""
        timed = self.success + self.failed
        ordered = sorted(self.recent)
        p95 = percentile(ordered, 0.95)
        p50 = percentile(ordered, 0.5)

        def ms(value: float | None) -> float | None:
            return None if value is None else round(value * 1000, 1)

        return {
            "runs": self.runs,
            "success": self.success,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "interrupted": self.interrupted,
            "success_rate": round(100 * self.success / self.runs, 1) if self.runs else None,
            "min_ms": ms(self.min),
            "avg_ms": ms(self.total / timed) if timed and self.recent else None,
            "p50_ms": ms(p50),
            "p95_ms": ms(p95),
            "max_ms": ms(self.max),
        }


class ChartStats:
    """Outcome counts per `BUCKET_SECONDS` bucket and per function."""

    def __init__(self, clock: Any = time.time) -> None:
        self._clock = clock
        self._counted: OrderedDict[str, None] = OrderedDict()
        # Each bucket: [bucket start (unix seconds), succeeded, failed, other terminal outcomes].
        self._buckets: deque[list[int]] = deque(maxlen=BUCKETS)
        self.functions: dict[str, FunctionStats] = {}

    def observe(self, record: TaskRecord) -> bool:
        """Count `record` if it just finished; True when something changed."""
        status = record.status
        if not status.is_terminal or record.task_id in self._counted:
            return False
        self._counted[record.task_id] = None
        if len(self._counted) > _REMEMBERED:
            self._counted.popitem(last=False)
        start = int(self._clock()) // BUCKET_SECONDS * BUCKET_SECONDS
        if not self._buckets or self._buckets[-1][0] != start:
            self._buckets.append([start, 0, 0, 0])
        bucket = self._buckets[-1]
        bucket[1 if status is TaskStatus.SUCCESS else 2 if status is TaskStatus.FAILED else 3] += 1
        stats = self.functions.get(record.func_name)
        if stats is None:
            stats = self.functions[record.func_name] = FunctionStats()
        stats.add(status, record.duration)
        return True

    def to_dict(self) -> dict[str, Any]:
        """`{"bucket_seconds", "now", "series": [[start, ok, failed, other], ...], "functions": {...}}`."""
        return {
            "bucket_seconds": BUCKET_SECONDS,
            "now": int(self._clock()),
            "series": [list(b) for b in self._buckets],
            "functions": {name: s.to_dict() for name, s in sorted(self.functions.items())},
        }
