"""A task's actor: what the runtime keeps for a task until it ends, and the callable its supervisor runs for
each attempt.

One small object per task does all of it: it holds the definition, the context captured by `add_task`, the
supervisor's handle, and it is the task scope that `task_log()` and `get_task_context()` find (bound in
the task's own context as each attempt starts). Each attempt resolves the arguments (encrypted ones are
decrypted here, inside the actor, and nowhere else), waits for a durable task's RUNNING state to be committed
on its first attempt, then calls the user's function.

This is the per-task hot path, and what it allocates is what the garbage collector walks while tasks are in
flight: one object here replaces a closure (with six cells), a scope per attempt and a record of the live
state (docs/benchmarks.md counts the tracked objects per queued task).
"""

from __future__ import annotations

import contextvars
import pickle
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from supervisors import ChildHandle

from . import _attempt_context
from ._checkpoint import decode_checkpoint, encode_checkpoint
from ._context import append_log, bind
from ._exceptions import PayloadError
from ._models import TaskRecord

if TYPE_CHECKING:
    from ._encryption import ArgsCipher
    from ._persistence import Persistence
    from ._process_pool import ProcessPool
    from ._registry import TaskDefinition

LogSink = Callable[[TaskRecord, int, str, str, dict[str, Any]], None]


class ActorServices:
    """What every actor of one runtime shares: where log lines go, the cipher, the persistence, and whether
    an observer wants what the request bound in structlog's contextvars (`keep_log_context`)."""

    __slots__ = ("cipher", "durable", "keep_log_context", "on_log", "on_update", "persistence", "processes")

    def __init__(
        self,
        on_log: LogSink,
        cipher: ArgsCipher | None,
        persistence: Persistence | None,
        *,
        keep_log_context: bool = False,
        on_update: Callable[[TaskRecord], None] | None = None,
        durable: Callable[[TaskDefinition], bool] = lambda definition: False,
        processes: ProcessPool | None = None,
    ) -> None:
        self.on_log = on_log
        self.processes = processes  # where `executor="process"` tasks run
        self.durable = durable  # whether a task's RUNNING state must be committed before its body runs
        self.on_update = on_update  # a record changed without a status change (a checkpoint was saved)
        self.cipher = cipher
        self.persistence = persistence
        self.keep_log_context = keep_log_context


class Actor:
    """One task from acceptance to its end. `record`, `attempt` and `on_log` make it the task scope."""

    __slots__ = (
        "attempt",
        "context",
        "definition",
        "failed_span",
        "handle",
        "log_context",
        "record",
        "running_batch",
        "services",
    )

    def __init__(
        self,
        record: TaskRecord,
        definition: TaskDefinition,
        context: contextvars.Context,
        services: ActorServices,
    ) -> None:
        self.record = record
        self.definition = definition
        self.context: contextvars.Context | None = context
        self.services = services
        self.handle: ChildHandle | None = None  # set once a supervisor runs it
        self.running_batch: int | None = (
            None  # a durable task starts only once its RUNNING state is committed
        )
        self.attempt = -1  # 0-based index of the running attempt (fastapi-taskflow's TaskContext.attempt)
        self.failed_span: Any = None  # the span context of a failed attempt, linked from the retry's span
        # What the request bound in structlog's contextvars, for observers (None when nothing was bound).
        self.log_context: dict[str, Any] | None = None

    def __call__(self) -> Any:
        """One attempt (an awaitable for async tasks)."""
        raise NotImplementedError

    def take_context(self) -> contextvars.Context:
        """The context to start the task in. The actor lets go of it: the context refers to the actor (it is
        bound in it), so keeping both would make every task a reference cycle, freed only by a full
        garbage collection."""
        context = self.context
        assert context is not None, "the task was already started"
        self.context = None
        return context

    @property
    def on_log(self) -> LogSink:
        return self.services.on_log

    def save_checkpoint(self, state: Any) -> None:
        """Keep `state` as the task's checkpoint (see `_checkpoint`); the store gets it with the record."""
        self.record.checkpoint = encode_checkpoint(state, self.services.cipher)
        if self.services.on_update is not None:
            self.services.on_update(self.record)

    def load_checkpoint(self) -> Any:
        """The task's last checkpoint, decoded (None if it never saved one)."""
        return decode_checkpoint(self.record.checkpoint, self.services.cipher)

    def _arguments(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        record = self.record
        if record.encrypted_payload is None:
            return record.args, record.kwargs
        cipher = self.services.cipher
        if cipher is None:
            raise PayloadError("the task's arguments are encrypted but no encrypt_args_key is configured")
        return cipher.decrypt_call(record.encrypted_payload)


class AsyncActor(Actor):
    """The actor of an `async def` task: each call is one attempt, run in the event loop."""

    __slots__ = ()

    async def __call__(self) -> Any:
        self.attempt += 1
        bind(self)  # in the task's own context (a copy per task): nothing to unbind
        batch = self.running_batch
        if batch is not None and self.services.persistence is not None:
            # Its RUNNING state must be durable before the body runs: after a crash the task is then
            # INTERRUPTED (or requeued if it allows it), never silently run a second time.
            self.running_batch = None
            await self.services.persistence.wait_committed(batch)
        args, kwargs = self._arguments()
        if _attempt_context.wanted():  # the app uses structlog or OpenTelemetry
            return await _attempt_context.call_async(self, self.definition.func, args, kwargs)
        return await self.definition.func(*args, **kwargs)


class SyncActor(Actor):
    """The actor of a plain `def` task: each call is one attempt, run in a worker thread."""

    __slots__ = ()

    def __call__(self) -> Any:
        self.attempt += 1
        bind(self)  # in this call's own context (anyio copies the task's into the worker thread)
        services = self.services
        if services.persistence is not None and services.durable(self.definition):
            # On a thread lane the worker tells the loop the body starts without waiting, so the RUNNING
            # batch may not be known yet in this thread: read it on the loop, where the worker's notice
            # (sent first) has been handled. One round trip, as waiting for the commit needs anyway.
            anyio.from_thread.run(self._running_committed)
        elif self.attempt:
            # A retry: the loop writes its "--- Retry n ---" line and attempt record as it handles the
            # worker's notice that the attempt starts. Wait for that (one round trip, retries only; the
            # notice was sent first) so the body's own lines come after the marker.
            anyio.from_thread.run_sync(_noted)
        args, kwargs = self._arguments()
        if _attempt_context.wanted():  # the app uses structlog or OpenTelemetry
            return _attempt_context.call_sync(self, self.definition.func, args, kwargs)
        return self.definition.func(*args, **kwargs)

    async def _running_committed(self) -> None:
        """Wait (on the loop) until this attempt's RUNNING state is committed, if a batch holds it."""
        batch = self.running_batch
        persistence = self.services.persistence
        if batch is not None and persistence is not None:
            self.running_batch = None
            await persistence.wait_committed(batch)


def _noted() -> None:
    """Nothing: run on the loop, it returns once the notices queued before it have been handled."""


class ProcessActor(Actor):
    """The actor of an `executor="process"` task: each call is one attempt, run in a worker process of the
    pool (the arguments decrypted here, in the parent); the lines and checkpoints it sends come back here."""

    __slots__ = ()

    async def __call__(self) -> Any:
        self.attempt += 1
        bind(self)
        batch = self.running_batch
        if batch is not None and self.services.persistence is not None:
            self.running_batch = None  # as for AsyncActor: RUNNING is durable before the body runs
            await self.services.persistence.wait_committed(batch)
        args, kwargs = self._arguments()
        if _attempt_context.wanted():  # the attempt's span (and structlog binding) in the parent
            return await _attempt_context.call_async(self, self._run, (args, kwargs), {})
        return await self._run(args, kwargs)

    async def _run(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        pool = self.services.processes
        assert pool is not None, "the runtime gives every actor its process pool"
        record = self.record
        checkpoint = self.load_checkpoint() if record.checkpoint is not None else None
        info = (record.task_id, record.func_name, self.attempt, dict(record.tags), checkpoint)
        return await pool.run(self.definition.func, args, kwargs, info, self._from_worker)

    def _from_worker(self, frame: tuple[Any, ...]) -> None:
        """A line or a checkpoint the body sent while it runs (on the loop)."""
        if frame[0] == "log":
            _, text, level, packed = frame
            try:
                extra = pickle.loads(packed)
            except Exception:
                extra = {}
            append_log(self, text, level, extra)
        else:
            self.save_checkpoint(frame[1])


def make_actor(
    record: TaskRecord, definition: TaskDefinition, context: contextvars.Context, services: ActorServices
) -> Actor:
    """The actor for `record`: async, sync or process after its task function and its executor."""
    kind: type[Actor]
    if definition.executor == "process":
        kind = ProcessActor
    else:
        kind = AsyncActor if definition.is_async else SyncActor
    actor = kind(record, definition, context, services)
    if services.keep_log_context:
        actor.log_context = _attempt_context.bound_log_values(context)
    return actor
