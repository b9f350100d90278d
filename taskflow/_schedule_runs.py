"""Starting a claimed run: its task record, committed before it starts, then its ticket released.

A claimed run (a periodic slot, a run now, a one-off) already holds a ticket in the schedule store. Its
PENDING record, tagged with where it came from, is committed to the task store first; only then is the
ticket released and the task handed to its policy's supervisor. So an instance that dies after the claim
leaves either the ticket (no record yet: a survivor starts the run, `adopt`) or a durable record (the
store's adoption of a lost instance's tasks re-runs it, as a `persist=True` task): the run is not lost, and
a run that may have started is never started twice by the schedule itself.

A run waits in its queue like any task (docs/queues.md): a one-off's own `queue` / `priority`, else its
function's (`@schedule(queue=, priority=)` declares them on the function), else the `default` queue when one
is declared. A run refused because its queue is full (`max_size` waiting) is recorded REJECTED, committed
and its ticket released, as `add_task` does with a refused task: visible in history, never run, never lost
silently. A one-off whose stored queue is no longer declared here is recorded INTERRUPTED (not started).
"""

from __future__ import annotations

import contextvars
import logging
from typing import TYPE_CHECKING

from ._codec import decode_call
from ._exceptions import PayloadError
from ._models import TaskRecord, TaskStatus, utcnow
from ._queues import DEFAULT_QUEUE
from .stores import AdoptedRun, OneOffEntry, ScheduleStore

if TYPE_CHECKING:
    from ._launcher import Launcher
    from ._lifecycle import Lifecycle
    from ._persistence import Persistence
    from ._registry import TaskDefinition, TaskRegistry

_log = logging.getLogger("taskflow.schedules")

SOURCE_TAG = "source"
"""Tag of every run a schedule made: value `scheduled` (fastapi-taskflow's `source` of such records)."""
SCHEDULE_TAG = "schedule"
"""Tag naming the periodic schedule of a run (the HTTP API finds a schedule's last run by it)."""
TRIGGER_TAG = "trigger"
"""How the run came: `slot`, `catch_up`, `startup`, `run_now`, `once` (a one-off) or `adopted`."""
SLOT_TAG = "slot"
RUN_KEY_TAG = "run_key"


class RunStarter:
    """Turns claimed runs into supervised tasks (see the module docstring)."""

    def __init__(
        self,
        *,
        registry: TaskRegistry,
        launcher: Launcher,
        lifecycle: Lifecycle,
        persistence: Persistence | None,
    ) -> None:
        self.registry = registry
        self.launcher = launcher
        self.lifecycle = lifecycle
        self.persistence = persistence

    async def start(self, backend: ScheduleStore, run_id: str, func_name: str, tags: dict[str, str],
                    once: OneOffEntry | None = None) -> TaskRecord:  # fmt: skip
        """Admit the run's record, commit it, release the ticket, start it. A run whose function is not
        registered here, or whose stored arguments cannot be read, is recorded INTERRUPTED (never silent)."""
        record = TaskRecord(task_id=run_id, func_name=func_name, status=TaskStatus.PENDING,
                            created_at=utcnow(), tags={SOURCE_TAG: "scheduled", **tags})  # fmt: skip
        definition = self.registry.find(func_name)
        problem = None if definition is not None else f"no task function is registered as {func_name!r} here"
        if once is not None and problem is None:
            if once.encrypted_payload is not None:
                record.encrypted_payload = once.encrypted_payload  # decrypted by the actor, as always
            else:
                try:
                    record.args, record.kwargs = decode_call(once.call)
                except PayloadError as exc:
                    problem = f"the stored arguments are unreadable: {exc}"
        queue, priority = self._placement(definition, once) if definition is not None else (None, 0)
        queues = self.launcher.queues
        if problem is None and queue is not None and (queues is None or queue not in queues.names()):
            problem = f"no queue named {queue!r} is declared here"
        if problem is not None or definition is None:
            _log.warning("scheduled run %s of %s not started: %s", run_id, func_name, problem)
            record.status_reason = f"not started: {problem}"
            record.end_time = utcnow()
            self.lifecycle.admit(record, status=TaskStatus.INTERRUPTED)
            await self._commit_and_release(backend, record)
            return record
        if queue is not None and queues is not None and not queues.reserve(queue, run_id, priority):
            # Refused like add_task's refused tasks (Launcher.submit): REJECTED in history, never run.
            reason = f"queue {queue!r} is full (max_size tasks are waiting)"
            _log.warning("scheduled run %s of %s rejected: %s", run_id, func_name, reason)
            self.lifecycle.admit(record)
            self.lifecycle.finish(record, TaskStatus.REJECTED, reason=f"rejected: {reason}")
            await self._commit_and_release(backend, record)
            return record
        self.launcher.accept(record, definition, contextvars.copy_context())
        await self._commit_and_release(backend, record)
        await self.launcher.start(run_id)
        return record

    def _placement(self, definition: TaskDefinition, once: OneOffEntry | None) -> tuple[str | None, int]:
        """(the queue the run waits in, or None, and its priority): the one-off's, else its function's,
        else the `default` queue when one is declared (what `add_task` chooses, `Launcher._route`)."""
        queue = once.queue if once is not None and once.queue is not None else definition.queue
        priority = once.priority if once is not None and once.priority is not None else definition.priority
        queues = self.launcher.queues
        if queue is None and queues is not None and queues.has_default:
            queue = DEFAULT_QUEUE
        return queue, priority

    async def _commit_and_release(self, backend: ScheduleStore, record: TaskRecord) -> None:
        if await self.launcher.make_durable([record]):
            try:
                await backend.release_run(record.task_id)
            except Exception:  # the ticket stays; a later adoption sees the stored record and drops it
                _log.exception("could not release the ticket of scheduled run %s", record.task_id)
        else:  # the ticket stays: if this instance is lost, a survivor runs it (the record is not stored)
            _log.error("the task store did not commit scheduled run %s; starting it anyway", record.task_id)

    async def adopt(self, backend: ScheduleStore, run: AdoptedRun) -> None:
        """Start a run a lost instance had claimed, unless its record made it to the store (then the
        task store's own adoption owns it, and only the ticket is dropped)."""
        persistence = self.persistence
        if persistence is not None and await persistence.store.get(run.run_id) is not None:
            await backend.release_run(run.run_id)
            return
        _log.warning(
            "run %s was claimed by lost instance %s: starting it here", run.run_id, run.previous_owner
        )
        if run.once is not None:
            tags = {TRIGGER_TAG: "adopted", RUN_KEY_TAG: run.once.run_key, **run.once.tags}
            await self.start(backend, run.run_id, run.once.func_name, tags, run.once)
        elif run.schedule is not None:
            tags = {TRIGGER_TAG: "adopted", SCHEDULE_TAG: run.schedule}
            if run.slot is not None:
                tags[SLOT_TAG] = run.slot.isoformat()
            await self.start(backend, run.run_id, run.schedule, tags)
        else:
            await backend.release_run(run.run_id)  # a one-off whose entry is already gone: nothing to run
