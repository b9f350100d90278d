"""Admitting tasks: `submit` makes a call (in the request) a PENDING record with its actor, or refuses it.

Admission decides whether a task may exist at all: the call's arguments and keys are checked, the call is
routed to its queue (the call's `queue=`, else its function's, else the default queue), an idempotency key
held by another task returns that task instead, and admission control refuses what does not fit (the
queue's `max_size`, the process's `max_pending`) as REJECTED. Starting what was admitted is the launcher's
(`_launcher.py`): the seam is the moment the record exists, before any response or supervisor sees it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._actor import Actor, ActorServices, make_actor
from ._exceptions import BacklogFull, QueueFull, TaskRejected
from ._models import TaskRecord, TaskStatus, new_task_id, utcnow
from ._process_call import check_call
from ._queues import DEFAULT_QUEUE, Queues, UnknownQueue
from ._tracing import current_traceparent
from ._unstored import call_to_store

if TYPE_CHECKING:
    from ._encryption import ArgsCipher
    from ._lifecycle import Lifecycle
    from ._persistence import Persistence
    from ._registry import TaskDefinition, TaskRegistry
    from ._table import TaskTable


class Admission:
    """Admits new tasks into the table, with their actors (see the module docstring)."""

    def __init__(
        self,
        *,
        registry: TaskRegistry,
        table: TaskTable,
        lifecycle: Lifecycle,
        actors: dict[str, Actor],
        services: ActorServices,
        cipher: ArgsCipher | None,
        persistence: Persistence | None,
        queues: Queues | None,
        max_pending: int | None,
    ) -> None:
        self.registry = registry
        self.table = table
        self.lifecycle = lifecycle
        self.actors = actors  # tasks not settled yet: admission adds them, their settlement removes them
        self.services = services
        self.cipher = cipher
        self.persistence = persistence
        self.queues = queues  # None when no queue is declared
        self.max_pending = max_pending  # most tasks held unsettled (None: no bound)

    def submit(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        tags: dict[str, str] | None = None,
        queue: str | None = None,
        priority: int | None = None,
    ) -> tuple[str, bool]:
        """Create the PENDING record of a call; return (task id, whether it must be started).

        When a non-failed task already holds `idempotency_key`, its id is returned and nothing is created.
        When there is no room for it (its queue's `max_size`, or `max_pending` for the process), its record
        is REJECTED and `TaskRejected` (`QueueFull`, `BacklogFull`) raised.
        """
        _check_call(func, idempotency_key, tags)
        definition = self.registry.definition_for(func)
        if definition.executor == "process":  # TaskArgumentError before any record exists
            check_call(func, definition.name, args, kwargs)
        queue_name: str | None = None
        if self.queues is not None or queue is not None or priority is not None:
            queue_name, priority = self._route(definition, queue, priority)
        if idempotency_key is not None:
            holder = self.table.key_holder(idempotency_key)
            if holder is not None:
                return holder, False
        payload = None
        if self.cipher is not None or self.persistence is not None:
            persist = definition.config.persist
            args, kwargs, payload = call_to_store(args, kwargs, persist=persist, cipher=self.cipher)
        record = TaskRecord(
            task_id=new_task_id(),
            func_name=definition.name,
            status=TaskStatus.PENDING,
            args=args,
            kwargs=kwargs,
            created_at=utcnow(),
            idempotency_key=idempotency_key,
            tags=dict(tags) if tags else {},
            encrypted_payload=payload,
            trace_context=current_traceparent(),  # None unless the app traces with OpenTelemetry
        )
        max_pending = self.max_pending
        if max_pending is not None and len(self.actors) >= max_pending:
            if queue_name is not None:
                self.queues.count_rejected(queue_name)  # type: ignore[union-attr]
            reason = f"the process holds {max_pending} unfinished tasks (max_pending)"
            return self._reject(record, BacklogFull(reason, task_id=record.task_id))
        if queue_name is not None and not self.queues.reserve(  # type: ignore[union-attr]
            queue_name, record.task_id, priority or 0
        ):
            reason = f"queue {queue_name!r} is full (max_size tasks are waiting); try again later"
            return self._reject(record, QueueFull(reason, task_id=record.task_id, queue=queue_name))
        if idempotency_key is None:
            self.accept(record, definition, contextvars.copy_context())
            return record.task_id, True
        holder = self.accept_unless_key_held(record, definition, contextvars.copy_context())
        if holder is not None:  # another thread took the key in between
            if queue_name is not None:
                self.queues.settled((record.task_id,))  # type: ignore[union-attr]  # give its place back
            return holder, False
        return record.task_id, True

    def _route(
        self, definition: TaskDefinition, queue: str | None, priority: int | None
    ) -> tuple[str | None, int]:
        """(the queue a call waits in, or None, and its priority): the call's, else its function's."""
        queues = self.queues
        if queue is not None:
            if not isinstance(queue, str):
                raise TypeError(f"queue must be a str, got {type(queue).__name__}")
            if queues is None:
                raise UnknownQueue(f"no queue named {queue!r} (no queue is declared)")
            name: str | None = queues.check_name(queue)
        elif definition.queue is not None:
            name = definition.queue
        else:
            name = DEFAULT_QUEUE if queues is not None and queues.has_default else None
        if priority is None:
            priority = definition.priority
        elif isinstance(priority, bool) or not isinstance(priority, int):
            raise TypeError(f"priority must be an int, got {type(priority).__name__}")
        return name, priority

    def _reject(self, record: TaskRecord, error: TaskRejected) -> tuple[str, bool]:
        """Keep a refused task in history as REJECTED (its key released) and raise `error`; unless a task
        in memory holds its idempotency key: that task's id is returned instead."""
        keyed = record.idempotency_key is not None
        holder = self.lifecycle.admit(record, unless_key_held=keyed)
        if holder is not None:
            return holder, False
        self.lifecycle.finish(record, TaskStatus.REJECTED, reason=f"rejected: {error}")
        raise error

    def accept(
        self,
        record: TaskRecord,
        definition: TaskDefinition,
        context: contextvars.Context,
        *,
        status: TaskStatus | None = None,
    ) -> None:
        """Admit a new PENDING record with its actor, ready to be started."""
        self.actors[record.task_id] = make_actor(record, definition, context, self.services)
        self.lifecycle.admit(record, status=status)

    def accept_unless_key_held(
        self, record: TaskRecord, definition: TaskDefinition, context: contextvars.Context
    ) -> str | None:
        """`accept` a keyed record atomically, unless a non-failed task in memory holds its idempotency key:
        that task's id is returned instead, and nothing is admitted."""
        self.actors[record.task_id] = make_actor(record, definition, context, self.services)
        holder = self.lifecycle.admit(record, unless_key_held=True)
        if holder is not None:
            del self.actors[record.task_id]
        return holder

    def place(self, task_id: str, definition: TaskDefinition) -> None:
        """Count a task made without `submit` (a retry, a task taken over from the store) in its function's
        queue, if it has one; never refused (an operator asked for it, or it was accepted once)."""
        queues = self.queues
        if queues is None:
            return
        name = definition.queue or (DEFAULT_QUEUE if queues.has_default else None)
        if name is not None:
            queues.reserve(name, task_id, definition.priority, force=True)


def _check_call(func: object, idempotency_key: object, tags: object) -> None:
    """TypeError for what `add_task` cannot take: not a callable, a key that is not a str, bad tags."""
    if not callable(func):
        raise TypeError(f"add_task() needs a callable, got {func!r}")
    if idempotency_key is not None and not isinstance(idempotency_key, str):
        raise TypeError(f"idempotency_key must be a str, got {type(idempotency_key).__name__}")
    if tags is not None and (
        not isinstance(tags, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items())
    ):
        raise TypeError("tags must be a dict of str to str")
