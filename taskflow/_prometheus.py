"""Prometheus / OpenMetrics metrics of a task manager: `TaskflowCollector`, a collector to register in a
`prometheus_client` registry (yours, or the one `TaskAdmin` serves at `{path}/metrics/prometheus`).

Needs `prometheus-client` (`pip install 'anyio-taskflow[prometheus]'`), imported here only. Every value is
read when the registry is scraped, from the manager's `statistics()` snapshots: nothing is counted twice and
nothing runs on a task's path. Families (counters get `_total` in the exposition):

- `taskflow_tasks_finished{function, status}`: tasks that reached a final status;
- `taskflow_task_attempts{function}`, `taskflow_task_retries{function}`: attempts and retries they took;
- `taskflow_task_duration_seconds{function}` (histogram): first attempt's start to the end;
- `taskflow_tasks{status}` (gauge): pending and running tasks now;
- `taskflow_limiter_in_use`, `_capacity`, `_waiting` `{policy, kind}` (gauges): async slots
  (`kind="async"`) and worker threads (`kind="threads"`) of each policy;
- `taskflow_store_write_duration_seconds` (summary), `taskflow_store_write_failures`: store commits;
- `taskflow_observer_events_dropped`, `taskflow_observer_errors`, `taskflow_observer_events_queued` (gauge).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._counters import DURATION_BUCKETS

if TYPE_CHECKING:
    from supervisors import SupervisorStatistics

    from ._runtime import TaskRuntime

__all__ = ["TaskflowCollector"]


def _families() -> Any:
    try:
        from prometheus_client import core
    except ImportError as exc:
        raise ImportError(
            "taskflow's Prometheus metrics need prometheus-client: pip install 'anyio-taskflow[prometheus]'"
        ) from exc
    return core


class TaskflowCollector:
    """A `prometheus_client` collector for one task manager: `REGISTRY.register(TaskflowCollector(tm))`."""

    def __init__(self, task_manager: TaskRuntime) -> None:
        self._core = _families()
        self.task_manager = task_manager

    def __repr__(self) -> str:
        return f"TaskflowCollector({self.task_manager!r})"

    def describe(self) -> list[Any]:
        # Nothing up front: registering never calls collect() on a manager that is not running yet.
        return []

    def collect(self) -> Iterator[Any]:
        core, tm = self._core, self.task_manager
        finished = core.CounterMetricFamily(
            "taskflow_tasks_finished", "Tasks that reached a final status.", labels=["function", "status"]
        )
        attempts = core.CounterMetricFamily(
            "taskflow_task_attempts", "Attempts of finished tasks.", labels=["function"]
        )
        retries = core.CounterMetricFamily(
            "taskflow_task_retries", "Retries of finished tasks.", labels=["function"]
        )
        durations = core.HistogramMetricFamily(
            "taskflow_task_duration_seconds",
            "Duration of finished tasks, retries included.",
            labels=["function"],
        )
        for name, counts in sorted(tm.counters.statistics().functions.items()):
            for status, count in sorted(counts.finished.items()):
                finished.add_metric([name, status], count)
            attempts.add_metric([name], counts.attempts)
            retries.add_metric([name], counts.retries)
            cumulative, buckets = 0, []
            for bound, count in zip([*map(str, DURATION_BUCKETS), "+Inf"], counts.buckets, strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            durations.add_metric([name], buckets, counts.duration_sum)
        yield from (finished, attempts, retries, durations)

        stats = tm.statistics()
        live = core.GaugeMetricFamily("taskflow_tasks", "Tasks pending or running now.", labels=["status"])
        live.add_metric(["pending"], stats.pending)
        live.add_metric(["running"], stats.running)
        yield live
        yield from self._limiters(stats.supervisor)

        store = tm.store_statistics()
        if store is not None:
            writes = core.SummaryMetricFamily(
                "taskflow_store_write_duration_seconds", "Time the store's committed writes took."
            )
            writes.add_metric([], count_value=store.batches, sum_value=store.write_seconds)
            failures = core.CounterMetricFamily("taskflow_store_write_failures", "Store writes that failed.")
            failures.add_metric([], store.failures)
            yield from (writes, failures)

        observers = tm.observer_statistics()
        dropped = core.CounterMetricFamily(
            "taskflow_observer_events_dropped", "Observer events dropped because too many were waiting."
        )
        dropped.add_metric([], observers.dropped)
        errors = core.CounterMetricFamily("taskflow_observer_errors", "Exceptions raised by observers.")
        errors.add_metric([], observers.errors)
        queued = core.GaugeMetricFamily(
            "taskflow_observer_events_queued", "Observer events not yet delivered."
        )
        queued.add_metric([], observers.queued)
        yield from (dropped, errors, queued)

    def _limiters(self, root: SupervisorStatistics | None) -> Iterator[Any]:
        core = self._core
        families = {
            key: core.GaugeMetricFamily(f"taskflow_limiter_{key}", text, labels=["policy", "kind"])
            for key, text in (
                ("in_use", "Slots in use: async tasks running, or worker threads busy."),
                ("capacity", "Slots available in total."),
                ("waiting", "Tasks waiting for a slot."),
            )
        }
        pending = [root] if root is not None else []
        while pending:  # the root (the manager-wide limits) and each policy's supervisor
            supervisor = pending.pop()
            pending.extend(supervisor.children)
            for kind, limiter in (("async", supervisor.limiter), ("threads", supervisor.thread_limiter)):
                if limiter is None:
                    continue
                families["in_use"].add_metric([supervisor.policy, kind], limiter.borrowed)
                families["capacity"].add_metric([supervisor.policy, kind], limiter.total)
                families["waiting"].add_metric([supervisor.policy, kind], limiter.waiting)
        yield from families.values()
