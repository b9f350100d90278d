"""The logging and tracing a workload turns on before it runs (`--observability`), and the proof of it.

taskflow binds structlog's contextvars around each attempt when the process has imported structlog, and
opens an OpenTelemetry span per attempt when a real tracer provider is set; with neither it does nothing.
These modes set up exactly that much and nothing that would cost on its own: structlog is configured to
drop every event (nothing logs in the no-op bodies anyway), and the SDK tracer provider has no span
processor, so spans are created, recorded and ended but exported nowhere.

`none` is the process as an application without either library sees it: structlog must not be imported,
which `report()` checks from `sys.modules` at the end of the run.
"""

from __future__ import annotations

import sys
from typing import Any

MODES = ("none", "structlog", "otel", "both")


def _drop(logger: Any, method: str, event: dict[str, Any]) -> Any:
    import structlog

    raise structlog.DropEvent


def setup(mode: str) -> None:
    """Import and configure what `mode` names; `none` touches nothing."""
    if mode not in MODES:
        raise SystemExit(f"unknown observability {mode!r}; pick one of {', '.join(MODES)}")
    if mode in ("structlog", "both"):
        import structlog

        structlog.configure(
            processors=[structlog.contextvars.merge_contextvars, _drop],
            logger_factory=structlog.ReturnLoggerFactory(),
            cache_logger_on_first_use=True,
        )
    if mode in ("otel", "both"):
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        trace.set_tracer_provider(TracerProvider())  # no span processor: nothing is exported


def report(mode: str) -> dict[str, Any]:
    """What was on in this process, read back at the end of the run (and which taskflow ran)."""
    provider = None
    trace = sys.modules.get("opentelemetry.trace")
    if trace is not None:
        provider = type(trace.get_tracer_provider()).__name__
    taskflow = sys.modules.get("taskflow")
    return {
        "mode": mode,
        "structlog_imported": "structlog" in sys.modules,
        "tracer_provider": provider,
        "taskflow_file": getattr(taskflow, "__file__", None),
    }


def as_expected(mode: str, seen: dict[str, Any]) -> bool:
    """True when the process ran as `mode` says: structlog imported only when asked, a real provider
    only when asked."""
    wants_structlog = mode in ("structlog", "both")
    wants_otel = mode in ("otel", "both")
    real_provider = seen["tracer_provider"] not in (None, "ProxyTracerProvider", "NoOpTracerProvider")
    return seen["structlog_imported"] == wants_structlog and real_provider == wants_otel
