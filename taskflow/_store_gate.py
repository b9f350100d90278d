"""What the store must confirm before a task goes on: a request's durable tasks are committed before its
response (`make_durable`) and withdrawn unrun when the store cannot confirm (`refuse`); a keyed task claims
its idempotency key in the store before it starts (`claim_key`), so that one task runs per key across every
instance sharing it.

Without a running store every gate is open. The seam is here because these are the only places admitting
and starting wait on the store: admission (`_admission.py`) and starting (`_launcher.py`) stay in memory.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._models import TaskRecord, TaskStatus

if TYPE_CHECKING:
    from ._actor import Actor
    from ._lifecycle import Lifecycle
    from ._persistence import Persistence
    from ._sinks import Durability

_log = logging.getLogger("taskflow")


class StoreGate:
    """Commits, refuses and claims keys in the store (see the module docstring)."""

    def __init__(
        self,
        *,
        persistence: Persistence | None,
        durability: Durability,
        actors: dict[str, Actor],
        lifecycle: Lifecycle,
    ) -> None:
        self.persistence = persistence
        self.durability = durability
        self.actors = actors  # tasks not settled yet (read only: a refused task's handle is cancelled)
        self.lifecycle = lifecycle

    @property
    def is_persistent(self) -> bool:
        """True while a store is open (between the start and the end of the lifespan)."""
        return self.persistence is not None and self.persistence.active

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

    def cancel_duplicate(self, record: TaskRecord, holder: str) -> None:
        """Withdraw a task whose key `holder` claimed first in the store: CANCELLED, never run."""
        self.lifecycle.finish(record, TaskStatus.CANCELLED, reason=f"duplicate of task {holder}")

    async def claim_key(self, record: TaskRecord) -> str | None:
        """Claim a keyed record's idempotency key in the store (every instance sharing it sees the claim);
        the id of the other task holding it, or None (claimed, no key, or no running store)."""
        persistence = self.persistence
        if record.idempotency_key is None or persistence is None or not persistence.active:
            return None
        # Another instance sharing the store may hold the key: the store decides, atomically.
        try:
            holder = await persistence.store.claim_idempotency_key(record.idempotency_key, record.task_id)
        except Exception:
            _log.exception(
                "could not claim idempotency key %r in the store; running anyway", record.idempotency_key
            )
            return None
        return holder if holder != record.task_id else None
