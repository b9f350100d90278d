"""Task ids and states."""

from __future__ import annotations

import os
import threading
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


def test_task_ids_stay_unique_across_threads_and_a_fork() -> None:
    """The random parts are drawn a block at a time: threads never share one, and a forked child does not
    reuse the parent's unused ones (which would give two processes the same ids)."""
    new_task_id()  # the parent now holds a partly used block
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write a few ids and leave at once
        os.write(write_end, " ".join(new_task_id()[-17:] for _ in range(5)).encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end) as pipe:
        child = set(pipe.read().split())
    parent = {new_task_id()[-17:] for _ in range(5)}
    assert len(child) == 5 and not child & parent

    ids: list[list[str]] = [[] for _ in range(4)]

    def make(out: list[str]) -> None:
        out.extend(new_task_id() for _ in range(3000))

    threads = [threading.Thread(target=make, args=(out,)) for out in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [task_id for out in ids for task_id in out]
    assert len(set(every)) == len(every) == 12000


def test_is_terminal_holds_for_exactly_the_final_states() -> None:
    terminal = [s.value for s in TaskStatus if s.is_terminal]
    assert terminal == ["success", "failed", "interrupted", "cancelled", "rejected"]
