"""Getting tasks going: `submit` (in the request) admits the PENDING record; after the response,
`start_after_response` starts the request's tasks, each handed over to its policy's supervisor while the
lifespan runs, or run inline, here and now, when none does.

The launcher also holds the supervision tree while the lifespan runs (`attach` / `detach`), and commits a
request's durable tasks before its response (`make_durable`), refusing them if the store cannot confirm.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from supervisors import Clock, Supervisor, SupervisorClosed, run_supervised

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
    from ._sinks import Durability
    from ._table import TaskTable
    from ._tracker import Tracker
    from .observers import ObserverDispatcher

_log = logging.getLogger("taskflow")


class Launcher:
    """Admits new tasks and starts them (see the module docstring)."""

    def __init__(
        self,
        *,
        registry: TaskRegistry,
        table: TaskTable,
        lifecycle: Lifecycle,
        actors: dict[str, Actor],
        services: ActorServices,
        durability: Durability,
        tracker: Tracker,
        dispatcher: ObserverDispatcher,
        cipher: ArgsCipher | None,
        persistence: Persistence | None,
        clock: Clock | None = None,
        queues: Queues | None = None,
        max_pending: int | None = None,
    ) -> None:
        self.registry = registry
        self.table = table
        self.lifecycle = lifecycle
        self.actors = actors  # tasks not settled yet
        self.services = services
        self.durability = durability
        self.tracker = tracker
        self.dispatcher = dispatcher
        self.cipher = cipher
        self.persistence = persistence
        self.clock = clock  # for tasks run inline (the lifespan's supervisors have it too)
        self.root: Supervisor | None = None  # the supervision tree, while the lifespan runs
        self.supervisors: dict[str, Supervisor] = {}  # one per policy, children of the root
        self.queues = queues  # None when no queue is declared: tasks then start as soon as they may
        if queues is not None:
            queues.on_start = self._start_queued_now
        self.max_pending = max_pending  # admission control: most tasks held unsettled (None: no bound)

    # -- the lifespan's supervision tree ---------------------------------------------------------------

    def attach(self, root: Supervisor) -> None:
        """Hand tasks to `root` from now on (the lifespan started)."""
        self.root = root

    def detach(self) -> None:
        """Run tasks inline again (the lifespan is ending)."""
        self.root = None
        self.supervisors.clear()

    @property
    def is_persistent(self) -> bool:
        """True while a store is open (between the start and the end of the lifespan)."""
        return self.persistence is not None and self.persistence.active

    # -- admitting -------------------------------------------------------------------------------------

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
        if not callable(func):
            raise TypeError(f"add_task() needs a callable, got {func!r}")
        if idempotency_key is not None and not isinstance(idempotency_key, str):
            raise TypeError(f"idempotency_key must be a str, got {type(idempotency_key).__name__}")
        if tags is not None and (
            not isinstance(tags, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items())
        ):
            raise TypeError("tags must be a dict of str to str")
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

    async def claim_key(self, record: TaskRecord) -> str | None:
        """Claim a keyed record's idempotency key in the store (every instance sharing it sees the claim);
        the id of the other task holding it, or None (claimed, no key, or no running store)."""
        persistence = self.persistence
        if record.idempotency_key is None or persistence is None or not persistence.active:
            return None
        return await self._claim_key(persistence, record)

    async def make_durable(self, records: list[TaskRecord]) -> bool:
        """Commit these records before a response goes out; False if the store could not confirm in time."""
        persistence = self.persistence
        if persistence is None or not persistence.active:
            return True
        return await persistence.make_durable(records, self.durability.requeue_flag)

    def refuse(self, record: TaskRecord, reason: str) -> None:
        """Withdraw an accepted task that never started (e.g. its commit failed): CANCELLED, never run."""
        if record.status is TaskStatus.PENDING:
            actor = self.actors.get(record.task_id)
            if actor is not None and actor.handle is not None:
                actor.handle.cancel(reason=reason)
            self.lifecycle.finish(record, TaskStatus.CANCELLED, reason=reason)

    # -- starting --------------------------------------------------------------------------------------

    async def start_after_response(self, task_ids: list[str]) -> None:
        """`start` each task, in order (what a request's background item does after the response)."""
        persistence = self.persistence
        claims_keys = persistence is not None and persistence.active
        for task_id in task_ids:
            actor = self.actors.get(task_id)
            if actor is None or actor.context is None:
                continue  # settled (e.g. cancelled) before it started, or already started
            record = actor.record
            if self.root is not None and not (claims_keys and record.idempotency_key is not None):
                if record.status is TaskStatus.PENDING:
                    queues = self.queues
                    if queues is not None and task_id in queues:
                        queues.ready(task_id)  # started when its queue has a free slot
                    else:
                        self.hand_over(record, actor)  # the common case: nothing to wait for
            else:
                await self.start(task_id)

    async def start(self, task_id: str) -> None:
        """Start a PENDING task: as a supervised actor when the lifespan runs, else inline, here and now."""
        actor = self.actors.get(task_id)
        record = self.table.get(task_id)
        if (
            actor is None
            or record is None
            or record.status is not TaskStatus.PENDING
            or actor.context is None  # its context went with it when it was started
        ):
            return  # cancelled before it started, unknown, or already started
        persistence = self.persistence
        if record.idempotency_key is not None and persistence is not None and persistence.active:
            holder = await self._claim_key(persistence, record)
            if holder is not None:
                self.lifecycle.finish(record, TaskStatus.CANCELLED, reason=f"duplicate of task {holder}")
                return
            if record.status is not TaskStatus.PENDING:
                return  # cancelled while the key was being claimed
        queues = self.queues
        if queues is not None and task_id in queues:
            await self._start_queued(queues, record, actor)
        elif self.root is None:
            await self.run_inline(record, actor)
        else:
            self.hand_over(record, actor)

    async def _start_queued(self, queues: Queues, record: TaskRecord, actor: Actor) -> None:
        """Let a task of a queue start when the queue has a slot: handed over then while the lifespan runs;
        inline (none runs), waited for here, then run here."""
        if self.root is not None:
            queues.ready(record.task_id)
            return
        wait = queues.ready(record.task_id, inline=True)
        if wait is None:
            return  # settled meanwhile
        try:
            await wait()
        except BaseException:  # cancelled while waiting (the server stops): settled, never left PENDING
            self.tracker.interrupted(record, "shutdown")
            raise
        if record.status is TaskStatus.PENDING and actor.context is not None:
            await self.run_inline(record, actor)

    def _start_queued_now(self, task_id: str) -> None:
        """A task of a queue got its slot while the lifespan runs: hand it to its policy's supervisor."""
        actor = self.actors.get(task_id)
        if actor is None or actor.context is None or actor.record.status is not TaskStatus.PENDING:
            return  # settled meanwhile: its slot is freed by its settlement
        if self.root is None:
            self.tracker.interrupted(actor.record, "shutdown")
        else:
            self.hand_over(actor.record, actor)

    def place(self, task_id: str, definition: TaskDefinition) -> None:
        """Count a task made without `submit` (a retry, a task taken over from the store) in its function's
        queue, if it has one; never refused (an operator asked for it, or it was accepted once)."""
        queues = self.queues
        if queues is None:
            return
        name = definition.queue or (DEFAULT_QUEUE if queues.has_default else None)
        if name is not None:
            queues.reserve(name, task_id, definition.priority, force=True)

    def enqueue(self, record: TaskRecord, actor: Actor) -> None:
        """Start an accepted task taken over from the store (adopted, requeued) through its function's
        queue, if it has one, else at once (the lifespan runs)."""
        self.place(record.task_id, actor.definition)
        queues = self.queues
        if queues is not None and record.task_id in queues:
            queues.ready(record.task_id)
        else:
            self.hand_over(record, actor)

    async def _claim_key(self, persistence: Persistence, record: TaskRecord) -> str | None:
        # Another instance sharing the store may hold the key: the store decides, atomically.
        assert record.idempotency_key is not None
        try:
            holder = await persistence.store.claim_idempotency_key(record.idempotency_key, record.task_id)
        except Exception:
            _log.exception(
                "could not claim idempotency key %r in the store; running anyway", record.idempotency_key
            )
            return None
        return holder if holder != record.task_id else None

    def hand_over(self, record: TaskRecord, actor: Actor) -> None:
        """Give a PENDING record to its policy's supervisor (the lifespan is running)."""
        root = self.root
        assert root is not None
        definition = actor.definition
        group = definition.supervisor_policy
        supervisor = self.supervisors.get(group.name)
        if supervisor is None:
            supervisor = self.supervisors[group.name] = root.child(group)
        try:
            actor.handle = supervisor.start_soon(
                actor,
                name=definition.name,
                key=record.task_id,
                context=actor.take_context(),
                policy=definition.policy if definition.group is not None else None,
            )
        except SupervisorClosed:
            self.tracker.interrupted(record, "shutdown")

    async def run_inline(self, record: TaskRecord, actor: Actor) -> None:
        """Run a task to its end in this coroutine, supervised alone (no lifespan is running)."""
        definition = actor.definition

        async def run() -> None:
            await run_supervised(
                actor,
                policy=definition.policy,
                name=definition.name,
                key=record.task_id,
                observers=[self.tracker],
                clock=self.clock,
            )

        # A task group of one, so the child runs in (a copy of) the context captured by add_task.
        async with anyio.create_task_group() as tg:
            actor.take_context().run(tg.start_soon, run)
        await self.dispatcher.drain()
