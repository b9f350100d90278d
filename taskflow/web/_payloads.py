"""The JSON shapes the dashboard's stream sends: full task dicts, small change events, SSE framing."""

from __future__ import annotations

import json
from typing import Any

from .._codec import UnstoredCallArgs
from .._metrics import TaskManagerStatistics
from .._models import TaskRecord

ERROR_EXCERPT = 300


def record_dict(record: TaskRecord, display_func_args: bool) -> dict[str, Any]:
    """`to_dict()`, plus `repr()`s of the arguments when the admin shows them (never encrypted ones).

    A call that could not be stored shows what the store holds for it (`<not stored: ...>` display forms,
    redacted when encryption is on), live or read back after a restart alike.
    """
    data = record.to_dict()
    if display_func_args and record.encrypted_payload is None:
        args, kwargs = record.args, record.kwargs
        if type(args) is UnstoredCallArgs:
            args, kwargs = args.stored
        data["args"] = [repr(a) for a in args]
        data["kwargs"] = {k: repr(v) for k, v in kwargs.items()}
    return data


def change_event(record: TaskRecord) -> dict[str, Any]:
    """The small `event: task` payload: a table row, without logs, traceback or arguments.

    The detail panel fetches the whole record from `GET {p}/{task_id}` when it is open.
    """
    error = record.error
    return {
        "task_id": record.task_id,
        "func_name": record.func_name,
        "status": record.status.value,
        "created_at": record.created_at.isoformat(),
        "start_time": record.start_time.isoformat() if record.start_time else None,
        "end_time": record.end_time.isoformat() if record.end_time else None,
        "duration": record.duration,
        "retries_used": record.retries_used,
        "error": error[:ERROR_EXCERPT] if error else None,
        "tags": dict(record.tags),
        "attempt_count": len(record.attempts),
        "log_count": len(record.logs),
        "status_reason": record.status_reason,
    }


def sse(event: str | None, data: str, event_id: str | None = None) -> str:
    """One SSE message; `data` is single-line JSON."""
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {data}\n\n" if event else f"{head}data: {data}\n\n"


def dumps(value: Any) -> str:
    """Compact JSON (one SSE `data:` line)."""
    return json.dumps(value, separators=(",", ":"))


def stream_metrics(s: TaskManagerStatistics, charts: dict[str, Any]) -> dict[str, Any]:
    """The stream's `metrics`: 0.5.0's keys (success rate in %, average in ms), then p50/p95, throughput
    and the chart data."""
    timed = s.success + s.failed

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 1)

    return {
        "total": s.total, "pending": s.pending, "running": s.running, "success": s.success,
        "failed": s.failed, "interrupted": s.interrupted, "cancelled": s.cancelled,
        "success_rate": round(100 * s.success / s.total, 1) if s.total else None,
        "avg_duration_ms": int(s.avg_duration_seconds * 1000) if timed else None,
        "p50_ms": ms(s.p50_duration_seconds), "p95_ms": ms(s.p95_duration_seconds),
        "throughput_per_second": s.throughput_per_second, "charts": charts,
    }  # fmt: skip
