"""Dead letters and bulk actions: `GET {p}/dead-letters` (failed and interrupted tasks grouped by function
and error), `POST {p}/bulk-retry` and `POST {p}/retry-failed`, and `GET {p}/export` (CSV or JSON of a
filtered listing).

Every retry goes through `TaskActions.retry`, so retrying the same task twice, concurrently or on another
instance, gives the same run. When a task and a failed retry of it are both picked, only the retry (the
newest of the chain) is retried, so one piece of work never gets two new runs.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, params
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTasks

from .._actions import RETRY_OF_TAG
from .._exceptions import InvalidTaskState, StoreUnavailable, TaskNotFound, TaskNotRegistered
from .._models import TaskRecord, TaskStatus, isoformat, utcnow
from ..stores import InvalidCursor
from ._api import MAX_ID_LENGTH, parse_since, parse_statuses, parse_tag, unavailable
from ._audit import AuditLog, csv_cell
from ._manager import TaskManager

MAX_BULK = 500
"""Most tasks one bulk retry (`task_ids`, or `retry-failed`'s `limit`) may name."""
MAX_BODY = 64 * 1024
"""Most bytes a bulk-retry body may have (500 ids of 64 characters fit)."""
MAX_SCAN = 10_000
"""Most records the dead-letter view and an export read (their `limit`)."""
GROUP_IDS = 100
"""Task ids listed per dead-letter group (the count covers them all)."""
ERROR_KEY = 200
DEAD = frozenset({TaskStatus.FAILED, TaskStatus.INTERRUPTED})
EXPORT_COLUMNS = (
    "task_id", "func_name", "status", "created_at", "start_time", "end_time", "duration", "retries_used",
    "error", "status_reason", "idempotency_key", "tags",
)  # fmt: skip


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def error_label(record: TaskRecord) -> str:
    """What a dead letter is grouped by besides its function: the first line of its error (or why it was
    interrupted), clipped."""
    text = record.error or record.status_reason or record.status.value
    return text.strip().splitlines()[0][:ERROR_KEY] if text.strip() else record.status.value


async def scan(manager: TaskManager, limit: int, **filters: Any) -> AsyncIterator[list[TaskRecord]]:
    """The history's records matching `filters`, newest first, page by page, at most `limit` in all."""
    left, cursor = limit, None
    while left > 0:
        page = await manager.actions.query_history(limit=min(1000, left), cursor=cursor, **filters)
        if page.records:
            yield page.records[:left]
        left -= len(page.records)
        cursor = page.next_cursor
        if cursor is None:
            return


def export_row(record: TaskRecord) -> dict[str, Any]:
    """One exported task (no arguments, logs or traceback)."""
    return {
        "task_id": record.task_id, "func_name": record.func_name, "status": record.status.value,
        "created_at": isoformat(record.created_at), "start_time": isoformat(record.start_time),
        "end_time": isoformat(record.end_time), "duration": record.duration,
        "retries_used": record.retries_used, "error": record.error, "status_reason": record.status_reason,
        "idempotency_key": record.idempotency_key, "tags": dict(record.tags),
    }  # fmt: skip


async def _export_csv(rows: AsyncIterator[list[TaskRecord]]) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    async for records in rows:
        for record in records:
            row = export_row(record)
            row["tags"] = json.dumps(row["tags"], sort_keys=True) if row["tags"] else ""
            writer.writerow([csv_cell(row[c]) for c in EXPORT_COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


async def _export_json(rows: AsyncIterator[list[TaskRecord]]) -> AsyncIterator[str]:
    first = True
    yield "["
    async for records in rows:
        parts = [json.dumps(export_row(r), separators=(",", ":")) for r in records]
        if parts:
            yield ("" if first else ",") + ",".join(parts)
            first = False
    yield "]"


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, read no further than `limit` bytes; ValueError when it is longer."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ValueError(f"the body must be at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def bulk_ids(raw: bytes) -> list[str]:
    """The `task_ids` of a bulk-retry body, checked; ValueError saying what is wrong."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    ids = body.get("task_ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not ids:
        raise ValueError('the body must be a JSON object {"task_ids": [...]} with at least one id')
    if len(ids) > MAX_BULK:
        raise ValueError(f"at most {MAX_BULK} task ids at once")
    if not all(isinstance(i, str) and 0 < len(i) <= MAX_ID_LENGTH for i in ids):
        raise ValueError(f"every task id must be a string of 1 to {MAX_ID_LENGTH} characters")
    return list(dict.fromkeys(ids))


def build_dead_letter_router(
    manager: TaskManager, audit: AuditLog, *, dependencies: Sequence[params.Depends] = ()
) -> APIRouter:
    """The dead-letter, bulk-retry and export routes, bound to one manager; actions go to `audit`."""
    router = APIRouter(dependencies=list(dependencies), tags=["tasks"])
    actions = manager.actions

    async def retry_each(
        records: list[TaskRecord], missing: list[str], background: BackgroundTasks
    ) -> dict[str, Any]:
        newer = {r.tags.get(RETRY_OF_TAG) for r in records}  # retried by another picked task
        results: list[dict[str, Any]] = [{"task_id": i, "outcome": "not_found"} for i in missing]
        for record in records:
            result: dict[str, Any] = {"task_id": record.task_id}
            if record.task_id in newer:
                result.update(outcome="skipped", detail="a retry of it is retried instead")
            else:
                try:
                    run = await actions.retry(record.task_id, record=record)
                except (InvalidTaskState, TaskNotRegistered) as exc:
                    result.update(outcome="refused", detail=str(exc))
                else:
                    if run.created:
                        background.add_task(manager.launcher.start, run.task_id)
                    result.update(outcome="retried" if run.created else "already_retried")
                    result["new_task_id"] = run.task_id
            results.append(result)
        counts = {k: sum(r["outcome"] == k for r in results) for k in ("retried", "already_retried")}
        return {**counts, "refused": len(results) - sum(counts.values()), "results": results}

    async def answer(
        request: Request, action: str, target: str, records: list[TaskRecord], missing: list[str]
    ) -> JSONResponse:
        background = BackgroundTasks()
        body = await retry_each(records, missing, background)
        response = JSONResponse(body, background=background)
        detail = f"retried {body['retried']}, already {body['already_retried']}, not {body['refused']}"
        await audit.record(request, action, target, 200, detail)
        return response

    async def refuse(
        request: Request, action: str, target: str | None, response: JSONResponse
    ) -> JSONResponse:
        detail = bytes(response.body).decode("utf-8", "replace")[:300]
        await audit.record(request, action, target, response.status_code, detail)
        return response

    @router.get("/dead-letters", summary="Failed and interrupted tasks, grouped by function and error")
    async def dead_letters(
        func_name: Annotated[str | None, Query(max_length=300)] = None,
        since: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_SCAN)] = 1000,
    ) -> Any:
        groups: dict[tuple[str, str], dict[str, Any]] = {}
        scanned = 0
        try:
            filters = {"statuses": DEAD, "since": parse_since(since), "func_name": func_name or None}
            async for records in scan(manager, limit, **filters):
                for r in records:
                    scanned += 1
                    group = groups.setdefault(
                        (r.func_name, error_label(r)),
                        {"func_name": r.func_name, "error": error_label(r), "count": 0, "statuses": {},
                         "newest_task_id": r.task_id, "newest_at": isoformat(r.created_at), "task_ids": []},
                    )  # fmt: skip
                    group["count"] += 1
                    group["statuses"][r.status.value] = group["statuses"].get(r.status.value, 0) + 1
                    if len(group["task_ids"]) < GROUP_IDS:
                        group["task_ids"].append(r.task_id)
        except StoreUnavailable as exc:
            return unavailable(exc)
        except ValueError as exc:
            return _error(400, str(exc))
        ordered = sorted(groups.values(), key=lambda g: (-g["count"], g["func_name"], g["error"]))
        return {"groups": ordered, "scanned": scanned, "complete": scanned < limit}

    @router.get("/export", summary="The tasks of a filter as CSV or JSON")
    async def export(
        format: Annotated[str, Query(max_length=10)] = "csv",
        status: Annotated[str | None, Query(max_length=200)] = None,
        func_name: Annotated[str | None, Query(max_length=300)] = None,
        tag: Annotated[str | None, Query(max_length=500)] = None,
        since: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_SCAN)] = MAX_SCAN,
    ) -> Any:
        if format not in ("csv", "json"):
            return _error(400, "format must be csv or json")
        try:
            filters = {
                "statuses": parse_statuses(status), "tag": parse_tag(tag), "since": parse_since(since),
                "func_name": func_name or None,
            }  # fmt: skip
            rows = scan(manager, limit, **filters)
            first = await anext(rows, None)  # bad filters and an unavailable store answer before streaming
        except StoreUnavailable as exc:
            return unavailable(exc)
        except (ValueError, InvalidCursor) as exc:
            return _error(400, str(exc))

        async def pages() -> AsyncIterator[list[TaskRecord]]:
            if first is not None:
                yield first
                async for more in rows:
                    yield more

        name = f"tasks-{utcnow().date().isoformat()}.{format}"
        body = _export_csv(pages()) if format == "csv" else _export_json(pages())
        media = "text/csv; charset=utf-8" if format == "csv" else "application/json"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        return StreamingResponse(body, media_type=media, headers=headers)

    @router.post("/bulk-retry", summary="Retry the failed or interrupted tasks named in the body")
    async def bulk_retry(request: Request) -> Any:
        try:
            ids = bulk_ids(await read_body(request, MAX_BODY))
        except ValueError as exc:  # too long, not JSON, or not the right shape
            return await refuse(request, "bulk_retry", None, _error(400, str(exc)))
        records: list[TaskRecord] = []
        missing = []
        try:
            for task_id in ids:
                try:
                    records.append(await actions.find(task_id))
                except TaskNotFound:
                    missing.append(task_id)
        except StoreUnavailable as exc:
            return await refuse(request, "bulk_retry", f"{len(ids)} tasks", unavailable(exc))
        return await answer(request, "bulk_retry", f"{len(ids)} tasks", records, missing)

    @router.post("/retry-failed", summary="Retry the failed and interrupted tasks of a function and window")
    async def retry_failed(
        request: Request,
        since: Annotated[str | None, Query(max_length=64)] = None,
        func_name: Annotated[str | None, Query(max_length=300)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_BULK)] = 100,
    ) -> Any:
        target = f"func_name={func_name or '*'} since={since or '*'} limit={limit}"
        records: list[TaskRecord] = []
        try:
            filters = {"statuses": DEAD, "since": parse_since(since), "func_name": func_name or None}
            async for page in scan(manager, limit, **filters):
                records.extend(page)
        except StoreUnavailable as exc:
            return await refuse(request, "retry_failed", target, unavailable(exc))
        except ValueError as exc:
            return await refuse(request, "retry_failed", target, _error(400, str(exc)))
        return await answer(request, "retry_failed", target, records, [])

    return router
