"""Task records and their states: the data every other part of taskflow reads and writes.

`TaskStatus`, `TaskRecord` and `TaskConfig` keep the names, fields and JSON shape of fastapi-taskflow 0.5.0;
what is new is additive: every timestamp is timezone-aware UTC, CANCELLED is a state, and each record keeps
its attempt history.
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_VERSION_VARIANT = (0x7 << 76) | (0x2 << 62)  # version 7, RFC 4122 / 9562 variant, in the low 80 bits
_RANDOM_MASK = ((1 << 80) - 1) & ~((0xF << 76) | (0x3 << 62))  # the 74 random bits around them
_RANDOM_BLOCK = 256  # random parts drawn from the OS at once
_random_parts: Iterator[int] = iter(())


def _refill() -> Iterator[int]:
    """A fresh block of random id parts (10 bytes each, from `os.urandom`)."""
    global _random_parts
    block = os.urandom(10 * _RANDOM_BLOCK)
    parts = [
        int.from_bytes(block[i : i + 10]) & _RANDOM_MASK | _VERSION_VARIANT for i in range(0, len(block), 10)
    ]
    _random_parts = iter(parts)
    return _random_parts


def _forget_random_parts() -> None:
    """After a fork: the child must not hand out the parent's unused random parts (the same ids)."""
    global _random_parts
    _random_parts = iter(())


os.register_at_fork(after_in_child=_forget_random_parts)


def new_task_id() -> str:
    """A time-ordered (version 7, RFC 9562) UUID in its canonical text form: 48 bits of Unix milliseconds,
    then 74 random bits.

    Ids made in different milliseconds sort in the order they were made, so a store's index on task ids
    grows at its end instead of touching a random page for every new task (with random ids that was a large
    share of the pages each SQLite commit wrote: see docs/benchmarks.md). The random part keeps them as
    hard to guess as a version 4 id of an API's ordinary size; what the time part reveals, `created_at`
    already shows. The random parts come from `os.urandom` a block at a time (one system call per id was
    the dearest part of making one); each is used once (`next` on a list iterator is atomic, so threads
    never share one), and a forked child draws its own.
    """
    try:
        random = next(_random_parts)
    except StopIteration:
        random = next(_refill())
    h = "%032x" % ((time.time_ns() // 1_000_000) << 80 | random)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


SHORT_ID_LENGTH = 8


def short_id(task_id: str) -> str:
    """The short form of a task id that logs and the dashboard show: its last 8 characters.

    Not the first 8: those of a version 7 id are its creation time, the same for every task of about a
    minute. The last 8 hex digits are random, so tasks made together still read apart. (The dashboard's
    `shortId()` in `web/static/dashboard.js` mirrors this function.)
    """
    return task_id[-SHORT_ID_LENGTH:]


def id_matches(task_id: str, text: str) -> bool:
    """True when `text` starts the full id or its short form: what the dashboard's id search matches."""
    return task_id.startswith(text) or short_id(task_id).startswith(text)


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (taskflow never stores naive times)."""
    return datetime.now(UTC)


def isoformat(value: datetime | None) -> str | None:
    """ISO 8601 with an explicit UTC offset; naive values (from old files) are taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


class TaskStatus(str, enum.Enum):  # noqa: UP042  (str() and repr() stay as in fastapi-taskflow)
    """Where a task is in its life: PENDING -> RUNNING -> SUCCESS | FAILED | CANCELLED | INTERRUPTED, or
    PENDING -> REJECTED when it was refused at `add_task` (see docs/queues.md)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"
    REJECTED = "rejected"  # refused at add_task: its queue or the process backlog was full; never ran

    #: True once the task will not change state again (unless retried as a new task). A plain attribute set
    #: on each member (not a property): it is read several times per task on the hot path.
    is_terminal: bool

    def __init__(self, value: str) -> None:
        self.is_terminal = value not in ("pending", "running")


TERMINAL_STATUSES = frozenset(s for s in TaskStatus if s.is_terminal)


@dataclass(slots=True)
class AttemptRecord:
    """One attempt of a task: when it started and ended, and its error if it failed."""

    number: int
    start_time: datetime
    end_time: datetime | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form used by the HTTP API."""
        return {
            "number": self.number,
            "start_time": isoformat(self.start_time),
            "end_time": isoformat(self.end_time),
            "error": self.error,
        }


@dataclass
class TaskConfig:
    """The options a task was declared with (`@task_manager.task(...)`), as in fastapi-taskflow 0.5.0."""

    retries: int = 0
    delay: float = 0.0
    backoff: float = 1.0
    persist: bool = False
    name: str | None = None
    requeue_on_interrupt: bool = False


@dataclass(slots=True)
class TaskRecord:
    """One task's state. Field order and `to_dict()` keys are those of fastapi-taskflow 0.5.0.

    `args`, `kwargs`, `idempotency_key`, `encrypted_payload`, `trace_context` and `checkpoint` never appear
    in `to_dict()`. `trace_context` is the W3C `traceparent` of the span that was current when the task was
    submitted (None without OpenTelemetry): a task run again after a restart links its spans back to it.
    `checkpoint` is the task's last saved progress (`get_task_context().checkpoint(state)`), encoded: JSON
    text, or `"fernet:"` and a Fernet token of that JSON when arguments are encrypted (None until saved).
    `instance` (read-only, not compared) is the id of the instance that owns the record in the store, set on
    records read from a store (None on the ones this process keeps: `to_dict()` then says null).
    """

    task_id: str
    func_name: str
    status: TaskStatus
    args: tuple[Any, ...] = field(default_factory=tuple)
    kwargs: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)
    start_time: datetime | None = None
    end_time: datetime | None = None
    retries_used: int = 0
    error: str | None = None
    logs: list[str] = field(default_factory=list)
    stacktrace: str | None = None
    idempotency_key: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    encrypted_payload: bytes | None = None
    attempts: list[AttemptRecord] = field(default_factory=list)
    status_reason: str | None = None
    trace_context: str | None = None
    checkpoint: str | None = None
    instance: str | None = field(default=None, compare=False)

    @property
    def duration(self) -> float | None:
        """Seconds from the first attempt's start to the end, retries and backoff included."""
        if self.start_time is None or self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: the 0.5.0 keys, then `attempts`, `status_reason` and `instance`."""
        return {
            "task_id": self.task_id,
            "func_name": self.func_name,
            "status": self.status.value,
            "created_at": isoformat(self.created_at),
            "start_time": isoformat(self.start_time),
            "end_time": isoformat(self.end_time),
            "duration": self.duration,
            "retries_used": self.retries_used,
            "error": self.error,
            "logs": list(self.logs),
            "stacktrace": self.stacktrace,
            "tags": dict(self.tags),
            "attempts": [a.to_dict() for a in self.attempts],
            "status_reason": self.status_reason,
            "instance": self.instance,
        }
