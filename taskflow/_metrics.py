"""Task metrics: lifetime outcome counters, recent durations and throughput, as frozen snapshots.

Counters are updated on each terminal transition (O(1)); percentiles are computed on demand over the most
recent durations, so `/tasks/metrics` costs the same with ten tasks or ten million.
"""

from __future__ import annotations

import statistics as stats
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from supervisors import SupervisorStatistics

from ._models import TaskRecord, TaskStatus

THROUGHPUT_WINDOW = 60.0
DURATION_SAMPLES = 10_000


@dataclass(frozen=True, slots=True)
class TaskManagerStatistics:
    """A snapshot of the task manager: counts per status, durations, throughput and supervision."""

    total: int
    pending: int
    running: int
    success: int
    failed: int
    interrupted: int
    cancelled: int
    success_rate: float
    avg_duration_seconds: float
    p50_duration_seconds: float | None
    p95_duration_seconds: float | None
    throughput_per_second: float
    supervisor: SupervisorStatistics | None

    def to_metrics(self) -> dict[str, Any]:
        """The `/tasks/metrics` JSON: the fastapi-taskflow 0.5.0 keys first, then the additions."""
        return {
            "total": self.total,
            "success": self.success,
            "failed": self.failed,
            "running": self.running,
            "pending": self.pending,
            "interrupted": self.interrupted,
            "success_rate": self.success_rate,
            "avg_duration_seconds": self.avg_duration_seconds,
            "cancelled": self.cancelled,
            "p50_duration_seconds": self.p50_duration_seconds,
            "p95_duration_seconds": self.p95_duration_seconds,
            "throughput_per_second": self.throughput_per_second,
        }


class MetricsRecorder:
    """Accumulates outcomes as tasks finish (called on the event loop by the runtime)."""

    def __init__(self) -> None:
        self.finished: dict[TaskStatus, int] = {s: 0 for s in TaskStatus if s.is_terminal}
        self._durations: deque[float] = deque(maxlen=DURATION_SAMPLES)
        self._duration_sum = 0.0
        self._duration_count = 0
        # Completions per whole second of the last THROUGHPUT_WINDOW: memory stays flat whatever the rate.
        self._completions: deque[list[int]] = deque()

    def record_finished(self, record: TaskRecord) -> None:
        """Count a task that reached a terminal state."""
        self.finished[record.status] += 1
        duration = record.duration
        if duration is not None and record.status in (TaskStatus.SUCCESS, TaskStatus.FAILED):
            self._durations.append(duration)
            self._duration_sum += duration
            self._duration_count += 1
        second = int(time.monotonic())
        completions = self._completions
        if completions and completions[-1][0] == second:
            completions[-1][1] += 1
        else:
            completions.append([second, 1])
            self._prune(second)

    def _prune(self, now: float) -> None:
        cutoff = now - THROUGHPUT_WINDOW
        completions = self._completions
        while completions and completions[0][0] < cutoff:
            completions.popleft()

    def snapshot(
        self, pending: int, running: int, supervisor: SupervisorStatistics | None
    ) -> TaskManagerStatistics:
        """Freeze the current figures; `pending`/`running` come from the live table."""
        self._prune(time.monotonic())
        f = self.finished
        total = pending + running + sum(f.values())
        durations = sorted(self._durations)
        p50 = p95 = None
        if durations:
            p50 = round(stats.median(durations), 6)
            p95 = round(durations[min(len(durations) - 1, int(0.95 * len(durations)))], 6)
        avg = round(self._duration_sum / self._duration_count, 6) if self._duration_count else 0.0
        return TaskManagerStatistics(
            total=total,
            pending=pending,
            running=running,
            success=f[TaskStatus.SUCCESS],
            failed=f[TaskStatus.FAILED],
            interrupted=f[TaskStatus.INTERRUPTED],
            cancelled=f[TaskStatus.CANCELLED],
            success_rate=(f[TaskStatus.SUCCESS] / total) if total else 0.0,
            avg_duration_seconds=avg,
            p50_duration_seconds=p50,
            p95_duration_seconds=p95,
            throughput_per_second=round(sum(c for _, c in self._completions) / THROUGHPUT_WINDOW, 3),
            supervisor=supervisor,
        )
