"""`StructlogObserver`: task log lines and status changes as structlog events.

The library only calls `structlog.get_logger(name)`, never `structlog.configure()`: your configuration
decides rendering and destination. structlog is imported lazily, here only. Calls run in a worker thread,
once per batch, because a configured logger may write to a file or a socket; so the values bound in
structlog's contextvars where the event happened (the request's, and inside a task the task's) travel with
the event (`event.context`) and are passed as key/values, since the worker thread has none of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

from ._base import lifecycle_level, normalize_level
from ._events import LifecycleEvent, LogEvent
from ._lines import BufferedObserver

__all__ = ["StructlogObserver"]

_Call = tuple[str, str, dict[str, Any]]
_OWN_KEYS = frozenset({"event", "task_id", "func_name", "attempt", "tags"})
Processor = Callable[[Any, str, MutableMapping[str, Any]], Any]


class StructlogObserver(BufferedObserver[_Call]):
    """Logs each event on `structlog.get_logger(logger_name)`, with what structlog's contextvars held in
    the request and the task, then task_id, func_name, attempt, tags and the line's extras as key/values.
    Status changes are logged as `"task <status>"` at their level.

    `processors` are ordinary structlog processors (`(logger, method_name, event_dict) -> event_dict`)
    run on taskflow's events only, before your configuration's chain; one may raise `structlog.DropEvent`
    to drop an event (see `taskflow.observers.redact_keys` and `drop_keys`).
    """

    wants_log_context = True

    def __init__(
        self,
        logger_name: str = "taskflow",
        *,
        min_level: str = "info",
        processors: Iterable[Processor] = (),
    ) -> None:
        try:
            import structlog
        except ImportError as exc:
            raise ImportError(
                "StructlogObserver needs structlog: pip install 'anyio-taskflow[structlog]'"
            ) from exc
        super().__init__(log_lifecycle=True, min_level=min_level)
        self.logger_name = logger_name
        self.processors = tuple(processors)
        for processor in self.processors:
            if not callable(processor):
                raise TypeError(f"processors must be callables, got {processor!r}")
        self._logger: Any = structlog.get_logger(logger_name)
        self._drop_event: type[BaseException] = structlog.DropEvent

    def _log_item(self, event: LogEvent) -> _Call:
        values = dict(event.context)
        # An extra that collides with our keys is renamed rather than dropped or allowed to override.
        values.update({f"extra_{k}" if k in _OWN_KEYS else k: v for k, v in event.extra.items()})
        values.update(
            task_id=event.task_id, func_name=event.func_name, attempt=event.attempt, tags=dict(event.tags)
        )
        return normalize_level(event.level), event.message, values

    def _lifecycle_item(self, event: LifecycleEvent) -> _Call:
        values: dict[str, Any] = dict(event.context)
        values.update(
            task_id=event.task_id,
            func_name=event.func_name,
            attempt=event.attempt,
            tags=dict(event.tags),
            status=event.status.value,
            retries_used=event.retries_used,
        )
        for key in ("duration", "error", "stacktrace"):
            if getattr(event, key) is not None:
                values[key] = getattr(event, key)
        return lifecycle_level(event), f"task {event.status.value}", values

    def _write(self, items: list[_Call]) -> None:
        logger, processors = self._logger, self.processors
        for level, message, values in items:
            if processors:
                event_dict: Any = {"event": message, **values}
                try:
                    for processor in processors:
                        event_dict = processor(logger, level, event_dict)
                except self._drop_event:
                    continue
                message = event_dict.pop("event", message)
                values = event_dict
            getattr(logger, level)(message, **values)
