"""How `RedisStore` lays a record out in a Redis hash, and reads it back; and the listing walk over an index.

A record's hash holds the same columns as a SQLite row (`_sqlite_schema.COLUMNS`), each as a field; a None
column is an absent field. The conversion reuses the SQLite row functions, so both stores encode records
(times, logs, attempts, arguments through `encode_call`) identically.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .._models import TaskRecord
from ._common import utc_text
from ._sqlite_schema import COLUMNS, from_row, to_row

NAMES = tuple(COLUMNS.split(", "))
LIST_NAMES = tuple(n for n in NAMES if n != "call")  # listings never read (or decode) the args
_INTS = frozenset({"retries_used", "requeue"})


def write_args(records: Sequence[TaskRecord], owner: str, requeue_ids: frozenset[str]) -> list[Any]:
    """The WRITE script's arguments after the prefix; raises TypeError (unencodable args) before any I/O."""
    out: list[Any] = []
    for record in {r.task_id: r for r in records}.values():  # a task listed twice: its last state
        row = to_row(record, owner, record.task_id in requeue_ids)
        fields = [(name, value) for name, value in zip(NAMES, row, strict=True) if value is not None]
        end = record.end_time.timestamp() if record.end_time is not None else ""
        out += [record.task_id, row[2], record.func_name, row[3], end, row[11], len(fields)]
        for name, value in fields:
            out += [name, value]
    return out


def from_fields(names: Sequence[str], values: Sequence[bytes | None], *, with_args: bool) -> TaskRecord:
    """The record held by these hash fields (HMGET order); args are decoded only `with_args`."""
    row: dict[str, Any] = dict.fromkeys(NAMES)
    for name, value in zip(names, values, strict=True):
        if value is None or name == "encrypted_payload":
            row[name] = value
        elif name in _INTS:
            row[name] = int(value)
        else:
            row[name] = value.decode()
    return from_row(row, with_args=with_args)  # type: ignore[arg-type]  # a mapping, like sqlite3.Row


def member(created_text: str, task_id: str) -> str:
    """The index member of a record: lexicographic order of members is (created_at, task_id) order."""
    return f"{created_text}|{task_id}"


def since_bound(since: Any) -> str:
    """The lowest member created at or after `since` (members are longer than the bare time text)."""
    return "[" + utc_text(since)


Fetch = Callable[[str, str, str, int], list[tuple[str, TaskRecord | None]]]
"""fetch(index, high, low, count): up to `count` (member, listing record) pairs of `index`, newest first,
between the BYLEX bounds `high` and `low`; the record is None when its hash vanished meanwhile."""


def fetcher(client: Any, key: Callable[..., str]) -> Fetch:
    """The `Fetch` of a redis-py client: one ZRANGE BYLEX REV, then the records in one pipeline."""

    def fetch(index: str, high: str, low: str, count: int) -> list[tuple[str, TaskRecord | None]]:
        found = client.zrange(index, high, low, desc=True, bylex=True, offset=0, num=count)
        members = [m.decode() for m in found]
        pipe = client.pipeline(transaction=False)
        for m in members:
            pipe.hmget(key("t", m.partition("|")[2]), LIST_NAMES)
        rows = pipe.execute()
        return [
            (m, None if row[0] is None else from_fields(LIST_NAMES, row, with_args=False))
            for m, row in zip(members, rows, strict=True)
        ]

    return fetch


def walk(
    fetch: Fetch, index: str, high: str, low: str, want: int, keep: Callable[[TaskRecord], bool]
) -> list[tuple[str, TaskRecord]]:
    """Up to `want` records of `index` that `keep` accepts, newest first, read in growing chunks."""
    found: list[tuple[str, TaskRecord]] = []
    chunk = max(want, 64)
    while len(found) < want:
        batch = fetch(index, high, low, chunk)
        found += [(m, r) for m, r in batch if r is not None and keep(r)]
        if len(batch) < chunk:
            break  # the index is exhausted
        high = "(" + batch[-1][0]
        chunk = min(chunk * 2, 4096)
    return found[:want]
