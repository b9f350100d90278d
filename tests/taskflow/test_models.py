"""Task ids and states."""

from __future__ import annotations

import uuid

from taskflow import TaskStatus
from taskflow._models import new_task_id


def test_task_ids_are_canonical_random_version_4_uuids() -> None:
    ids = [new_task_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for task_id in ids:
        parsed = uuid.UUID(task_id)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, task_id)


def test_is_terminal_holds_for_exactly_the_final_states() -> None:
    assert [s.value for s in TaskStatus if s.is_terminal] == ["success", "failed", "interrupted", "cancelled"]
