"""The body of a task's actor: the callable its supervisor runs for each attempt.

It binds the task scope (so `task_log()` and `get_task_context()` work anywhere inside), resolves the
arguments (encrypted ones are decrypted here, inside the actor, and nowhere else), waits for a durable
task's RUNNING state to be committed on its first attempt, then calls the user's function. One closure per
task: this is on the per-task hot path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from supervisors import current_attempt

from ._context import TaskScope, bind, unbind
from ._exceptions import PayloadError
from ._models import TaskRecord

if TYPE_CHECKING:
    from ._encryption import ArgsCipher
    from ._persistence import Persistence
    from ._runtime import _Live

LogSink = Callable[[TaskRecord, int, str, str, dict[str, Any]], None]


def attempt_callable(
    record: TaskRecord,
    live: _Live,
    on_log: LogSink,
    cipher: ArgsCipher | None,
    persistence: Persistence | None,
) -> Callable[[], Any]:
    """An async callable for async task functions, a sync one (run in a worker thread) for sync ones."""
    func = live.definition.func

    if live.definition.is_async:

        async def run_async_attempt() -> Any:
            if live.running_batch is not None and persistence is not None:
                # Its RUNNING state must be durable before the body runs: after a crash the task is then
                # INTERRUPTED (or requeued if it allows it), never silently run a second time.
                batch, live.running_batch = live.running_batch, None
                await persistence.wait_committed(batch)
            args, kwargs = _arguments(record, cipher)
            token = bind(TaskScope(record, _attempt_index(), on_log))
            try:
                return await func(*args, **kwargs)
            finally:
                unbind(token)

        return run_async_attempt

    def run_sync_attempt() -> Any:
        if live.running_batch is not None and persistence is not None:
            batch, live.running_batch = live.running_batch, None
            anyio.from_thread.run(persistence.wait_committed, batch)  # this worker thread waits
        args, kwargs = _arguments(record, cipher)
        token = bind(TaskScope(record, _attempt_index(), on_log))
        try:
            return func(*args, **kwargs)
        finally:
            unbind(token)

    return run_sync_attempt


def _arguments(record: TaskRecord, cipher: ArgsCipher | None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if record.encrypted_payload is None:
        return record.args, record.kwargs
    if cipher is None:
        raise PayloadError("the task's arguments are encrypted but no encrypt_args_key is configured")
    return cipher.decrypt_call(record.encrypted_payload)


def _attempt_index() -> int:
    """The 0-based attempt number (fastapi-taskflow's TaskContext.attempt) of the running attempt."""
    info = current_attempt()
    return info.attempt - 1 if info is not None else 0
