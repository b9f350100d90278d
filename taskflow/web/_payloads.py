"""The JSON shapes the dashboard's stream sends: full task dicts, small change events, SSE framing."""

from __future__ import annotations

import json
from typing import Any

from .._codec import UnstoredCallArgs
from .._models import TaskRecord

ERROR_EXCERPT = 300


def record_dict(
    record: TaskRecord, display_func_args: bool, *, instance: str | None = None
) -> dict[str, Any]:
    """`to_dict()`, plus `repr()`s of the arguments when the admin shows them (never encrypted ones), and
    `instance` when given (the instance that runs it, when the record did not come from the store).

    A call that could not be stored shows what the store holds for it (`<not stored: ...>` display forms,
    redacted when encryption is on), live or read back after a restart alike.
    """
    data = record.to_dict()
    if instance is not None:
        data["instance"] = instance
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


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else round(100 * fraction, 1)


def stream_metrics(m: dict[str, Any], process_charts: dict[str, Any], now: float) -> dict[str, Any]:
    """The stream's `metrics`, made from the `/tasks/metrics` JSON `m` so the page shows the API's numbers:
    0.5.0's keys (success rate in %, average in ms), then p50/p95, throughput, `scope` and the chart data.

    The charts come from `m` when the store gave per-function figures; else from `process_charts` (this
    process's `ChartStats`), and `charts.scope` says "process".
    """
    total = m["total"]
    timed = m.get("p50_duration_seconds") is not None
    if "functions" in m:
        charts = {
            "scope": "store",
            "bucket_seconds": m["timeline"]["bucket_seconds"],
            "now": int(now),
            "series": m["timeline"]["series"],
            "complete": m["timeline"]["complete"],
            "sample": m["duration_sample"],
            "functions": {
                name: {
                    "runs": f["runs"], "success": f["success"], "failed": f["failed"],
                    "cancelled": f["cancelled"], "interrupted": f["interrupted"],
                    "success_rate": _percent(f["success_rate"]),
                    **{f"{k}_ms": _ms(f[f"{k}_seconds"]) for k in ("min", "avg", "p50", "p95", "max")},
                }
                for name, f in m["functions"].items()
            },
        }  # fmt: skip
    else:
        charts = {"scope": "process", **process_charts}
    return {
        "total": total, "pending": m["pending"], "running": m["running"], "success": m["success"],
        "failed": m["failed"], "interrupted": m["interrupted"], "cancelled": m["cancelled"],
        "rejected": m.get("rejected", 0),
        "success_rate": _percent(m["success_rate"]) if total else None,
        "avg_duration_ms": int(m["avg_duration_seconds"] * 1000) if timed else None,
        "p50_ms": _ms(m["p50_duration_seconds"]), "p95_ms": _ms(m["p95_duration_seconds"]),
        "throughput_per_second": m["throughput_per_second"], "scope": m["scope"], "charts": charts,
    }  # fmt: skip
