"""Task metrics: this process's outcome counters, recent durations and throughput, as frozen snapshots;
and the same figures computed from a store's `summary()`, for every instance sharing the store.

Counters are updated on each terminal transition (O(1)); percentiles are computed on demand over the most
recent durations, so `/tasks/metrics` costs the same with ten tasks or ten million. With a store, the
figures come from its aggregate query instead (see `store_figures`), and `scope` says which is which.
"""

from __future__ import annotations

import statistics as stats
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from supervisors import SupervisorStatistics

from ._models import TaskRecord, TaskStatus
from .stores import FinishedRun, StoreSummary, SummarizingStore, TaskStore

THROUGHPUT_WINDOW = 60.0
DURATION_SAMPLES = 10_000
TIMELINE_BUCKET = 10  # seconds per bar of the "finished" timeline
TIMELINE_BUCKETS = 60  # ten minutes of bars
PROCESS = {"counts": "process", "durations": "process"}


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
    rejected: int = 0  # refused at add_task (a full queue or process backlog)

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
            "rejected": self.rejected,
            "p50_duration_seconds": self.p50_duration_seconds,
            "p95_duration_seconds": self.p95_duration_seconds,
            "throughput_per_second": self.throughput_per_second,
            "scope": dict(PROCESS),
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

    def record_finished(self, record: TaskRecord, duration: float | None) -> None:
        """Count a task that reached a terminal state after `duration` seconds (`record.duration`)."""
        status = record.status
        self.finished[status] += 1
        if duration is not None and (status is TaskStatus.SUCCESS or status is TaskStatus.FAILED):
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
            rejected=f[TaskStatus.REJECTED],
            success_rate=(f[TaskStatus.SUCCESS] / total) if total else 0.0,
            avg_duration_seconds=avg,
            p50_duration_seconds=p50,
            p95_duration_seconds=p95,
            throughput_per_second=round(sum(c for _, c in self._completions) / THROUGHPUT_WINDOW, 3),
            supervisor=supervisor,
        )


def _percentile(ordered: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of a sorted list (the recorder's rule), None when empty."""
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 6)


def _durations(runs: list[FinishedRun]) -> dict[str, Any]:
    """min/avg/p50/p95/max seconds of the runs that succeeded or failed (None when there are none)."""
    ordered = sorted(
        r.duration
        for r in runs
        if r.duration is not None and r.status in (TaskStatus.SUCCESS, TaskStatus.FAILED)
    )
    if not ordered:
        return dict.fromkeys(("min_seconds", "avg_seconds", "p50_seconds", "p95_seconds", "max_seconds"))
    return {
        "min_seconds": round(ordered[0], 6),
        "avg_seconds": round(sum(ordered) / len(ordered), 6),
        "p50_seconds": round(stats.median(ordered), 6),
        "p95_seconds": _percentile(ordered, 0.95),
        "max_seconds": round(ordered[-1], 6),
    }


def _timeline(runs: list[FinishedRun], now: float, complete: bool) -> dict[str, Any]:
    """Finished runs per TIMELINE_BUCKET seconds over the last TIMELINE_BUCKETS buckets, oldest first:
    `[bucket start (Unix seconds), succeeded, failed, other outcomes]`."""
    first = (int(now) // TIMELINE_BUCKET - TIMELINE_BUCKETS + 1) * TIMELINE_BUCKET
    buckets: dict[int, list[int]] = {}
    for run in runs:
        if run.ended < first:
            continue
        start = int(run.ended) // TIMELINE_BUCKET * TIMELINE_BUCKET
        bucket = buckets.setdefault(start, [start, 0, 0, 0])
        bucket[1 if run.status is TaskStatus.SUCCESS else 2 if run.status is TaskStatus.FAILED else 3] += 1
    # Not `complete` when the sample of recent runs ran out inside the window: older bars are then short.
    return {"bucket_seconds": TIMELINE_BUCKET, "series": sorted(buckets.values()), "complete": complete}


def summary_figures(summary: StoreSummary, *, now: float, sample: int) -> dict[str, Any]:
    """The `/tasks/metrics` figures from a store summary taken with `recent=sample`, at Unix time `now`.

    Counts cover every stored record; durations the `sample` latest finished runs; throughput the runs
    that ended in the last THROUGHPUT_WINDOW seconds.
    """
    totals = dict.fromkeys(TaskStatus, 0)
    for per_status in summary.counts.values():
        for status, count in per_status.items():
            totals[status] += count
    total = sum(totals.values())
    runs = summary.recent
    full = len(runs) >= sample
    window_start = now - THROUGHPUT_WINDOW
    in_window = sum(1 for r in runs if r.ended >= window_start)
    # When the sample ran out inside the window, the rate over the span it covers is the better estimate.
    span = THROUGHPUT_WINDOW if not full or runs[-1].ended < window_start else max(1.0, now - runs[-1].ended)
    overall = _durations(runs)
    by_function: dict[str, list[FinishedRun]] = {}
    for run in runs:
        by_function.setdefault(run.func_name, []).append(run)
    functions = {}
    for name in sorted(summary.counts):
        counts = summary.counts[name]
        finished = sum(n for s, n in counts.items() if s.is_terminal)
        success = counts.get(TaskStatus.SUCCESS, 0)
        functions[name] = {
            "runs": finished,
            **{s.value: counts.get(s, 0) for s in TaskStatus},
            "success_rate": success / finished if finished else None,
            **_durations(by_function.get(name, [])),
        }
    return {
        "total": total,
        **{s.value: totals[s] for s in TaskStatus},
        "success_rate": totals[TaskStatus.SUCCESS] / total if total else 0.0,
        "avg_duration_seconds": overall["avg_seconds"] or 0.0,
        "p50_duration_seconds": overall["p50_seconds"],
        "p95_duration_seconds": overall["p95_seconds"],
        "throughput_per_second": round(in_window / span, 3),
        "scope": {"counts": "store", "durations": "store"},
        "duration_sample": len(runs),
        "functions": functions,
        "timeline": _timeline(
            runs, now, complete=not full or runs[-1].ended < now - TIMELINE_BUCKET * TIMELINE_BUCKETS
        ),
    }


async def store_figures(store: TaskStore) -> dict[str, Any]:
    """The figures a store can give for `/tasks/metrics`: all of them from `summary()` when it has one,
    else the status counts from `counts()` (durations and throughput then stay this process's)."""
    if isinstance(store, SummarizingStore):
        summary = await store.summary(recent=DURATION_SAMPLES)
        return summary_figures(summary, now=time.time(), sample=DURATION_SAMPLES)
    counts = await store.counts()
    total = sum(counts.values())
    return {
        "total": total,
        **{s.value: counts.get(s, 0) for s in TaskStatus},
        "success_rate": counts.get(TaskStatus.SUCCESS, 0) / total if total else 0.0,
        "scope": {"counts": "store", "durations": "process"},
    }
