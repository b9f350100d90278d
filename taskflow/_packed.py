"""Finished task records packed into plain tuples, so that thousands of them cost little memory and no
garbage-collector time.

The task table keeps up to `max_terminal_records` finished records (10,000 by default, or all of them). As
`TaskRecord` objects each one is several objects the cyclic garbage collector tracks and walks on every
full collection (the record, its `logs`, `tags` and `attempts` containers, an attempt; docs/benchmarks.md
has the figures).
Packed, a record is one *exact* tuple of strings, floats and the call's arguments, which CPython stops
tracking once a collection finds only untracked items in it, and what usually repeats is left out:

- the short form `(task_id, func_name, status, args, created, start, end)` is a task that ran once and
  ended with no error, logs, tags, keyword arguments or reason: the common case;
- the long form appends `(kwargs, retries_used, error, logs, stacktrace, idempotency_key, tags,
  encrypted_payload, attempts, status_reason, trace_context, checkpoint)` for the others.

The collector untracks a tuple only once every item in it is an untracked tuple or an atomic value, and
it visits a container before the items only it refers to: so the packed tuple holds no dict (a dict always
counts as tracked) and nests one level at most (keyword arguments, tags and attempts are flat tuples, their
items one after another). A fresh packed record is then untracked by its second young collection, before
a full collection could ever walk it.

Times are POSIX timestamps (floats): for microsecond-precision UTC times before 2106 the conversion is
exact both ways (a float holds them to well under half a microsecond, and `datetime.fromtimestamp` rounds
to the nearest microsecond). A record with any other time (another offset, a naive value, a later year) is
not packed. The status is its text value (an enum member is an object the collector tracks). `attempts`
is None when it is exactly the one attempt the record's own times and error describe.

`unpack` rebuilds an equal `TaskRecord` with fresh containers, so a caller changing it changes nothing kept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ._models import AttemptRecord, TaskRecord, TaskStatus

Packed = tuple[Any, ...]

STATUS_BY_VALUE: dict[str, TaskStatus] = {s.value: s for s in TaskStatus}

_SHORT = 7
_LATEST = 2**32  # 2106-02-07: below it, a float timestamp keeps every microsecond (see the module docstring)

# Positions in a packed tuple.
TASK_ID, FUNC_NAME, STATUS, _ARGS, CREATED, _START, END = range(_SHORT)
_KWARGS, _RETRIES, _ERROR, _LOGS, _STACKTRACE, IDEMPOTENCY_KEY, TAGS, _PAYLOAD, _ATTEMPTS, _REASON = range(
    _SHORT, _SHORT + 10
)
_TRACE = _SHORT + 10
_CHECKPOINT = _SHORT + 11


def _stamp(value: datetime | None) -> float | None:
    """The timestamp of an aware UTC time; raises _Unpackable for anything else."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        raise _Unpackable
    stamp = value.timestamp()
    if not 0 <= stamp < _LATEST:
        raise _Unpackable
    return stamp


def _time(stamp: float | None) -> datetime | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC)


class _Unpackable(Exception):
    """Internal: the record holds something a packed tuple cannot reproduce exactly."""


def pack(record: TaskRecord) -> Packed | None:
    """The packed form of a finished record, or None when it has to stay a `TaskRecord` (see above)."""
    start_time, end_time = record.start_time, record.end_time
    created: float | None
    start: float | None
    end: float | None
    if start_time is not None and end_time is not None:  # a task that ran: no call per time (hot path)
        if record.created_at.tzinfo is not UTC or start_time.tzinfo is not UTC or end_time.tzinfo is not UTC:
            return None
        created, start, end = record.created_at.timestamp(), start_time.timestamp(), end_time.timestamp()
        if not (0 <= created < _LATEST and 0 <= start < _LATEST and 0 <= end < _LATEST):
            return None
    else:
        try:
            created, start, end = _stamp(record.created_at), _stamp(start_time), _stamp(end_time)
        except _Unpackable:
            return None
    if type(record.args) is not tuple:
        return None
    attempts = record.attempts
    # The tracker gives a task's first attempt the record's own time objects: `is` settles most compares.
    lone = (
        len(attempts) == 1
        and (only := attempts[0]).number == 1
        and (only.start_time is start_time or only.start_time == start_time)
        and (only.end_time is end_time or only.end_time == end_time)
        and only.error == record.error
    )
    head = (record.task_id, record.func_name, record.status._value_, record.args, created, start, end)
    if (
        lone
        and record.error is None
        and not record.kwargs
        and not record.logs
        and not record.tags
        and record.retries_used == 0
        and record.stacktrace is None
        and record.idempotency_key is None
        and record.encrypted_payload is None
        and record.status_reason is None
        and record.trace_context is None
        and record.checkpoint is None
    ):
        return head
    packed_attempts: tuple[Any, ...] | None = None
    if not lone:
        flat: list[Any] = []
        try:
            for a in attempts:
                flat += (a.number, _stamp(a.start_time), _stamp(a.end_time), a.error)
        except _Unpackable:
            return None
        packed_attempts = tuple(flat)
    return (
        *head,
        _flat(record.kwargs) if record.kwargs else None,
        record.retries_used,
        record.error,
        tuple(record.logs) if record.logs else None,
        record.stacktrace,
        record.idempotency_key,
        _flat(record.tags) if record.tags else None,
        record.encrypted_payload,
        packed_attempts,
        record.status_reason,
        record.trace_context,
        record.checkpoint,
    )


def _flat(mapping: dict[str, Any]) -> tuple[Any, ...]:
    return tuple([item for pair in mapping.items() for item in pair])


def _unflat(items: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(items[::2], items[1::2], strict=True))


def unpack(packed: Packed) -> TaskRecord:
    """A new `TaskRecord` equal to the one that was packed."""
    start, end = _time(packed[_START]), _time(packed[END])
    record = TaskRecord(
        packed[TASK_ID],
        packed[FUNC_NAME],
        STATUS_BY_VALUE[packed[STATUS]],
        packed[_ARGS],
        {},
        datetime.fromtimestamp(packed[CREATED], UTC),
        start,
        end,
    )
    if len(packed) == _SHORT:
        assert start is not None
        record.attempts.append(AttemptRecord(1, start, end))
        return record
    kwargs, logs, tags, attempts = packed[_KWARGS], packed[_LOGS], packed[TAGS], packed[_ATTEMPTS]
    if kwargs is not None:
        record.kwargs = _unflat(kwargs)
    record.retries_used = packed[_RETRIES]
    record.error = packed[_ERROR]
    if logs is not None:
        record.logs = list(logs)
    record.stacktrace = packed[_STACKTRACE]
    record.idempotency_key = packed[IDEMPOTENCY_KEY]
    if tags is not None:
        record.tags = _unflat(tags)
    record.encrypted_payload = packed[_PAYLOAD]
    if attempts is None:
        assert start is not None
        record.attempts.append(AttemptRecord(1, start, end, record.error))
    else:
        record.attempts = [
            AttemptRecord(number, datetime.fromtimestamp(started, UTC), _time(ended), error)
            for number, started, ended, error in zip(*[iter(attempts)] * 4, strict=True)
        ]
    record.status_reason = packed[_REASON]
    record.trace_context = packed[_TRACE]
    record.checkpoint = packed[_CHECKPOINT]
    return record


# ---- reading a kept item (a live TaskRecord or a packed tuple) without unpacking it ---------------------


def status_of(item: TaskRecord | Packed) -> TaskStatus:
    return item.status if isinstance(item, TaskRecord) else STATUS_BY_VALUE[item[STATUS]]


def func_name_of(item: TaskRecord | Packed) -> str:
    return item.func_name if isinstance(item, TaskRecord) else item[FUNC_NAME]


def task_id_of(item: TaskRecord | Packed) -> str:
    return item.task_id if isinstance(item, TaskRecord) else item[TASK_ID]


def created_at_of(item: TaskRecord | Packed) -> datetime:
    return item.created_at if isinstance(item, TaskRecord) else datetime.fromtimestamp(item[CREATED], UTC)


def end_time_of(item: TaskRecord | Packed) -> datetime | None:
    return item.end_time if isinstance(item, TaskRecord) else _time(item[END])


def idempotency_key_of(item: TaskRecord | Packed) -> str | None:
    if isinstance(item, TaskRecord):
        return item.idempotency_key
    return item[IDEMPOTENCY_KEY] if len(item) > _SHORT else None


def tag_of(item: TaskRecord | Packed, key: str) -> str | None:
    if isinstance(item, TaskRecord):
        return item.tags.get(key)
    tags = item[TAGS] if len(item) > _SHORT else None
    if tags is None:
        return None
    for i in range(0, len(tags), 2):
        if tags[i] == key:
            value: str = tags[i + 1]
            return value
    return None
