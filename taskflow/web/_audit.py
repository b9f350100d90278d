"""The audit log: every action taken through the API or the dashboard, and `GET {p}/audit` to read it.

Entries go to the task store when it has the `AuditStore` capability and is running (they survive restarts
and every instance sharing the store sees them); otherwise to this process's memory. The route is read-only:
there is no way to change or delete an entry over HTTP (the retention bound drops the oldest).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, params
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.requests import HTTPConnection

from .._models import isoformat, utcnow
from ..stores import AuditEntry, AuditStore, MemoryAccess
from ._sessions import ANONYMOUS, Principal

_log = logging.getLogger("taskflow.web")
PRINCIPAL_KEY = "taskflow_principal"
MAX_PAGE = 1000
MAX_FIELD = 500
_ENTRY_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
CSV_COLUMNS = ("entry_id", "at", "actor", "client", "action", "target", "outcome", "detail")


def principal_of(conn: HTTPConnection) -> Principal:
    """Who the request acts as (set by the session guard; anonymous without auth)."""
    return getattr(conn.state, PRINCIPAL_KEY, None) or ANONYMOUS


def client_address(conn: HTTPConnection, trust_proxy: bool) -> str | None:
    """The client's address: the last `X-Forwarded-For` hop when proxies are trusted (the address the
    trusted proxy saw; the hops before it are whatever the client wrote), else the socket's peer."""
    if trust_proxy:
        forwarded = conn.headers.get("x-forwarded-for", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last[:100]
    return conn.client.host if conn.client is not None else None


def entry_dict(entry: AuditEntry) -> dict[str, Any]:
    """An entry as JSON."""
    return {
        "entry_id": entry.entry_id, "at": isoformat(entry.at), "actor": entry.actor, "client": entry.client,
        "action": entry.action, "target": entry.target, "outcome": entry.outcome, "detail": entry.detail,
    }  # fmt: skip


_last_id = [0, 0]  # (Unix milliseconds, counter) of the last entry id made in this process


def _entry_id() -> str:
    """A version 7 UUID that sorts after every id this process made before, even within one millisecond:
    a 12-bit counter in the `rand_a` field (RFC 9562, method 1), then 62 random bits."""
    ms = time.time_ns() // 1_000_000
    last_ms, counter = _last_id
    if ms <= last_ms:  # same millisecond (or the clock stepped back): count on from the last id
        ms, counter = (last_ms, counter + 1) if counter < 0xFFF else (last_ms + 1, 0)
    else:
        counter = 0
    _last_id[:] = [ms, counter]
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _clip(value: str | None) -> str | None:
    return None if value is None else value[:MAX_FIELD]


class AuditLog:
    """Records and reads audit entries; `store` returns the running store (or None)."""

    def __init__(self, store: Callable[[], object | None], *, keep: int, trust_proxy: bool) -> None:
        self._store = store
        self.keep = keep
        self.trust_proxy = trust_proxy
        self._memory = MemoryAccess()

    def __repr__(self) -> str:
        return f"AuditLog(keep={self.keep}, trust_proxy={self.trust_proxy})"

    def _target(self) -> AuditStore:
        store = self._store()
        return store if isinstance(store, AuditStore) else self._memory

    async def record(
        self,
        conn: HTTPConnection,
        action: str,
        target: str | None,
        outcome: str | int,
        detail: str | None = None,
        *,
        actor: str | None = None,
    ) -> AuditEntry:
        """Add one entry for this request; `outcome` is a word or an HTTP status (< 400 becomes `ok`)."""
        if isinstance(outcome, int):
            outcome = "ok" if outcome < 400 else str(outcome)
        entry = AuditEntry(
            _entry_id(), utcnow(), _clip(actor or principal_of(conn).name) or "",
            client_address(conn, self.trust_proxy), action, _clip(target), outcome, _clip(detail),
        )  # fmt: skip
        target_store = self._target()
        try:
            await target_store.append_audit([entry], keep=self.keep)
        except Exception:  # an unreachable store must not lose the entry nor fail the action
            _log.exception("could not write the audit entry to the store; keeping it in memory")
            await self._memory.append_audit([entry], keep=self.keep)
        return entry

    async def page(self, *, limit: int, before: str | None = None) -> list[AuditEntry]:
        """Newest first, from the store when it keeps the log."""
        return await self._target().audit_page(limit=limit, before=before)


def csv_cell(value: object) -> str:
    """A CSV cell as text, defused: a spreadsheet would run a cell starting with = + - @ as a formula."""
    text = "" if value is None else str(value)
    # A spreadsheet runs cells starting with these as formulas: keep them text.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def _csv_rows(log: AuditLog, before: str | None, limit: int | None) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    left = limit if limit is not None else log.keep
    while left > 0:
        entries = await log.page(limit=min(MAX_PAGE, left), before=before)
        for entry in entries:
            writer.writerow([csv_cell(v) for v in entry_dict(entry).values()])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(entries) < min(MAX_PAGE, left):
            return
        left -= len(entries)
        before = entries[-1].entry_id


def build_audit_router(log: AuditLog, *, dependencies: Sequence[params.Depends] = ()) -> APIRouter:
    """`GET {p}/audit`: JSON pages (`X-Next-Cursor`) or, with `format=csv`, the whole log as CSV."""
    router = APIRouter(dependencies=list(dependencies), tags=["tasks"])

    @router.get("/audit", summary="The audit log, newest first (read-only)")
    async def audit(
        limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None,
        cursor: Annotated[str | None, Query(max_length=64)] = None,
        format: Annotated[str, Query(max_length=10)] = "json",
    ) -> Any:
        if format not in ("json", "csv"):
            return JSONResponse({"detail": "format must be json or csv"}, status_code=400)
        if cursor is not None and not _ENTRY_ID.match(cursor):
            return JSONResponse(
                {"detail": "cursor is invalid: pass the X-Next-Cursor value of a previous page"},
                status_code=400,
            )
        if format == "csv":
            name = f"audit-{utcnow().date().isoformat()}.csv"
            return StreamingResponse(
                _csv_rows(log, cursor, limit), media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )  # fmt: skip
        size = limit or 100
        entries = await log.page(limit=size + 1, before=cursor)
        headers = {"X-Next-Cursor": entries[size - 1].entry_id} if len(entries) > size else {}
        return JSONResponse([entry_dict(e) for e in entries[:size]], headers=headers)

    return router
