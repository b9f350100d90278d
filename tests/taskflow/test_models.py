"""Task ids and states."""

from __future__ import annotations

import time
import uuid

from taskflow import TaskStatus
from taskflow._models import new_task_id


def test_task_ids_are_canonical_time_ordered_version_7_uuids() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_task_id() for _ in range(2000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    for task_id in ids:
        parsed = uuid.UUID(task_id)
        assert (parsed.version, parsed.variant, str(parsed)) == (7, uuid.RFC_4122, task_id)
        assert before <= parsed.int >> 80 <= after  # the first 48 bits: Unix milliseconds
    millis = [uuid.UUID(i).int >> 80 for i in ids]
    assert millis == sorted(millis)
    time.sleep(0.002)
    assert new_task_id() > max(ids)  # a later millisecond sorts after, as text too


def test_task_ids_keep_74_random_bits() -> None:
    """Ids made in the same millisecond differ in their random part, which covers all of its bits."""
    ones = zeros = 0
    for _ in range(200):
        value = uuid.UUID(new_task_id()).int
        random_bits = ((value >> 64) & 0xFFF) << 62 | (value & (2**62 - 1))
        ones |= random_bits
        zeros |= ~random_bits & (2**74 - 1)
    assert ones == zeros == 2**74 - 1


def test_is_terminal_holds_for_exactly_the_final_states() -> None:
    terminal = [s.value for s in TaskStatus if s.is_terminal]
    assert terminal == ["success", "failed", "interrupted", "cancelled", "rejected"]
