"""Telling observers that the store's writes are failing, and that they recovered: once each, not per beat.

Apart from `Persistence` because it is a small state machine of its own (how many failures were reported,
whether an alarm is raised) read off the writer's statistics on every heartbeat.
"""

from __future__ import annotations

from typing import Protocol

from .stores import WriterStatistics


class ProblemReporter(Protocol):
    """Where the alarm goes (the runtime, which tells the observers)."""

    def report_store_problem(self, message: str, *, level: str) -> None: ...


class WriteAlarm:
    """Raised when writes start failing (again: at each new failure count), lowered when they recover."""

    def __init__(self) -> None:
        self._failures = 0
        self._raised = False

    def check(self, stats: WriterStatistics | None, reporter: ProblemReporter) -> None:
        """Report what changed since the last check (`stats` is None while no writer runs)."""
        if stats is None:
            return
        if stats.retrying and stats.failures > self._failures:
            self._failures = stats.failures
            self._raised = True
            reporter.report_store_problem(
                f"task store writes are failing ({stats.failures} so far, last: {stats.last_error}); "
                f"{stats.queued} records wait, retried with backoff: nothing is dropped",
                level="error",
            )
        elif self._raised and not stats.retrying:
            self._raised = False
            reporter.report_store_problem(
                "task store writes recovered; the queued records are committed", level="info"
            )
