"""Taking over the tasks of lost instances: claiming them from the store, and deciding what becomes of each.

Apart from `Persistence` (which claims on every heartbeat) because the decision is read by the lifespan too,
which adopts the claimed tasks: re-run one that may run again, or mark it INTERRUPTED saying why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ._models import TaskStatus
from ._unstored import NOT_RERUNNABLE, has_unstored
from .stores import RecoveredTask, TaskStore

_log = logging.getLogger("taskflow.store")


async def recover_orphans(store: TaskStore, instance_id: str, adopt: Callable[[RecoveredTask], None]) -> None:
    """Claim, for `instance_id`, the PENDING and RUNNING tasks of lost instances and `adopt` each one."""
    try:
        orphans = await store.claim_orphans(instance_id)
    except Exception:
        _log.exception("could not claim the tasks of lost instances; retrying later")
        return
    for orphan in orphans:
        adopt(orphan)


def recovery_decision(orphan: RecoveredTask, *, can_run: bool) -> tuple[TaskStatus, str]:
    """What becomes of a task taken over from a lost instance: re-run it, or mark it INTERRUPTED.

    A task whose stored call holds display forms (`UnstoredArgument`) is never re-run.
    """
    record = orphan.record
    lost = f"instance {orphan.previous_owner[:8]} was lost"
    unstored = has_unstored(record.args, record.kwargs)  # whatever the flag says: never run display forms
    if orphan.requeue and can_run and not unstored:
        return TaskStatus.PENDING, f"requeued: {lost}"
    reason = f"{lost} while it ran" if record.status is TaskStatus.RUNNING else f"{lost} before it ran"
    return TaskStatus.INTERRUPTED, f"{reason}; {NOT_RERUNNABLE}" if unstored else reason
