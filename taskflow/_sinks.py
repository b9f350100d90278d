"""The consumers of task changes (see `_lifecycle`): the store, the settlement, the observers, the listeners.

Each is a `Sink` the runtime puts in its one list when it has work to do: `StoreSink` only with a store,
`ObserverSink` only with observers. `Durability` is the rule the store sink and the shutdown share: which
records the store must run again if this instance stops or is lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ._codec import UnstoredCallArgs
from ._lifecycle import ChangeKind, Sink, TaskChange
from ._models import TaskRecord, TaskStatus
from ._persistence import request_records
from .observers import LifecycleEvent

if TYPE_CHECKING:
    from ._actor import Actor
    from ._counters import TaskCounters
    from ._metrics import MetricsRecorder
    from ._persistence import Persistence
    from ._registry import TaskDefinition, TaskRegistry
    from .observers import ObserverDispatcher

_log = logging.getLogger("taskflow")
_ADDED, _MOVED, _UPDATED, _REQUEUED = (
    ChangeKind.ADDED,
    ChangeKind.MOVED,
    ChangeKind.UPDATED,
    ChangeKind.REQUEUED,
)


class Durability:
    """Which tasks survive this instance: `persist=True` ones (every task with `requeue_pending`) while
    PENDING, `requeue_on_interrupt` ones while RUNNING."""

    def __init__(self, registry: TaskRegistry, actors: dict[str, Actor], requeue_pending: bool) -> None:
        self.registry = registry
        self.actors = actors
        self.requeue_pending = requeue_pending

    def is_durable(self, definition: TaskDefinition) -> bool:
        """Whether a PENDING task of `definition` must be committed before its response is sent."""
        return self.requeue_pending or definition.config.persist

    def requeue_flag(self, record: TaskRecord) -> bool:
        """Whether the store should re-run this record if its instance is lost in its current state."""
        actor = self.actors.get(record.task_id)
        definition = actor.definition if actor is not None else self.registry.find(record.func_name)
        if definition is None:
            return False
        if record.status is TaskStatus.PENDING:
            return self.requeue_pending or definition.config.persist
        if record.status is TaskStatus.RUNNING:
            return definition.config.requeue_on_interrupt
        return False

    def keep_at_shutdown(self, record: TaskRecord, definition: TaskDefinition) -> bool:
        """Whether a task stopped by shutdown is kept PENDING for the next start rather than INTERRUPTED."""
        if type(record.args) is UnstoredCallArgs:
            return False  # only display forms of its arguments are stored: it cannot run again
        config = definition.config
        if record.status is TaskStatus.RUNNING:
            return config.requeue_on_interrupt
        return self.requeue_pending or config.persist or config.requeue_on_interrupt


class StoreSink:
    """Queues every change to the store writer; a durable task's RUNNING state gates its first attempt."""

    def __init__(self, persistence: Persistence, durability: Durability, actors: dict[str, Actor]) -> None:
        self.persistence = persistence
        self.durability = durability
        self.actors = actors

    def take(self, changes: Sequence[TaskChange]) -> None:
        persistence = self.persistence
        durability = self.durability
        for kind, task_id, _, status, record, _ in changes:
            requeue = True if kind is _REQUEUED else durability.requeue_flag(record)
            batch = persistence.save(record, requeue=requeue)
            if kind is _ADDED:
                if requeue and status is TaskStatus.PENDING:
                    in_request = request_records.get()
                    if in_request is not None:
                        in_request.append(record)  # the web middleware commits these before the response
            elif kind is _MOVED and status is TaskStatus.RUNNING and batch is not None and persistence.active:
                actor = self.actors.get(task_id)
                if actor is not None and durability.is_durable(actor.definition):
                    actor.running_batch = batch


class SettleSink:
    """Lets go of a task's actor once it is settled or requeued, and counts finished tasks in the metrics
    and the per-function counters (one sink for the three: a task's duration is computed once)."""

    def __init__(self, actors: dict[str, Actor], metrics: MetricsRecorder, counters: TaskCounters) -> None:
        self.actors = actors
        self.metrics = metrics
        self.counters = counters

    @staticmethod
    def wants(kind: ChangeKind, status: TaskStatus) -> bool:
        return kind is _REQUEUED or (kind is not _UPDATED and status.is_terminal)

    def take(self, changes: Sequence[TaskChange]) -> None:
        for kind, task_id, previous, status, record, _ in changes:
            if kind is _UPDATED:
                continue
            if status.is_terminal:
                self.actors.pop(task_id, None)
                duration = record.duration
                self.metrics.record_finished(record, duration)
                if kind is not _REQUEUED and (previous is None or not previous.is_terminal):
                    self.counters.count(record, status, duration)
            elif kind is _REQUEUED:
                self.actors.pop(task_id, None)


class ObserverSink:
    """Turns status changes into the `LifecycleEvent`s observers receive (a task's creation is not one),
    with what the request bound in structlog's contextvars (kept by the task's actor: this sink comes
    before `SettleSink`, which lets the actor go)."""

    def __init__(self, dispatcher: ObserverDispatcher, actors: dict[str, Actor]) -> None:
        self.dispatcher = dispatcher
        self.actors = actors

    @staticmethod
    def wants(kind: ChangeKind, status: TaskStatus) -> bool:
        return kind is not _UPDATED and not (kind is _ADDED and status is TaskStatus.PENDING)

    def take(self, changes: Sequence[TaskChange]) -> None:
        for kind, task_id, _, status, record, at in changes:
            if kind is _UPDATED or (kind is _ADDED and status is TaskStatus.PENDING):
                continue
            actor = self.actors.get(task_id)
            bound = actor.log_context if actor is not None else None
            self.dispatcher.emit_lifecycle(
                LifecycleEvent(
                    task_id=task_id,
                    func_name=record.func_name,
                    status=status,
                    timestamp=datetime.fromtimestamp(at, UTC),
                    attempt=record.retries_used if status.is_terminal else 0,
                    retries_used=record.retries_used,
                    duration=record.duration,
                    error=record.error,
                    stacktrace=record.stacktrace,
                    tags=dict(record.tags),
                    context=dict(bound) if bound else {},
                )
            )


class ListenerSink:
    """The sinks that come and go while the runtime lives (the dashboard's change bus): each gets every
    change; one that raises is logged and keeps its place. None of them needs a change the moment it
    happens, so they take the changes of one turn of the event loop together (`per_tick`)."""

    per_tick = True

    def __init__(self) -> None:
        self._sinks: tuple[Sink, ...] = ()
        self._lock = threading.Lock()

    def add(self, sink: Sink) -> None:
        """Start handing changes to `sink`."""
        with self._lock:
            self._sinks = (*self._sinks, sink)

    def discard(self, sink: Sink) -> None:
        """Stop handing changes to `sink` (nothing if it was not added)."""
        with self._lock:
            self._sinks = tuple(s for s in self._sinks if s is not sink)

    def __contains__(self, sink: object) -> bool:
        return any(s is sink for s in self._sinks)

    def take(self, changes: Sequence[TaskChange]) -> None:
        for sink in self._sinks:  # a tuple replaced whole on add/discard: safe to walk from any thread
            try:
                sink.take(changes)
            except Exception:  # a broken listener must not break a task
                _log.exception("task listener %r failed", sink)
