"""Fill a task manager's table with finished tasks, to measure the dashboard against a large history."""

from __future__ import annotations

import uuid
from datetime import timedelta

from taskflow import TaskManager, TaskRecord, TaskStatus
from taskflow._models import AttemptRecord, utcnow


def fill(manager: TaskManager, count: int) -> None:
    """Add `count` finished records (one in ten failed, with a log line and a traceback each)."""
    now = utcnow()
    for i in range(count):
        created = now - timedelta(seconds=count - i)
        failed = i % 10 == 0
        record = TaskRecord(
            task_id=str(uuid.uuid4()),
            func_name=f"job_{i % 7}",
            status=TaskStatus.FAILED if failed else TaskStatus.SUCCESS,
            created_at=created,
            start_time=created,
            end_time=created + timedelta(milliseconds=20 + i % 80),
            error="ValueError: bad input" if failed else None,
            logs=[f"{created:%Y-%m-%dT%H:%M:%SZ} processing item {i}"],
            stacktrace="Traceback (most recent call last):\n  ...\nValueError: bad input" if failed else None,
            tags={"batch": str(i % 13)},
            attempts=[AttemptRecord(1, created, created + timedelta(milliseconds=20 + i % 80))],
        )
        manager.table.add(record)
