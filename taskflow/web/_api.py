"""The JSON API under `TaskAdmin(path=...)`: list, detail, metrics, retry, cancel, history, supervision.

Shapes and status codes are fastapi-taskflow 0.5.0's; filters, paging, cancel and the extra metrics are
additions. Every bad input gets a 4xx JSON answer with a message, never a 500, and never changes state. A
store that does not answer gets a 503 saying so (`/metrics` answers with this process's figures instead).
Every action (retry, cancel, history deletion) is written to the audit log, refused ones included.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, params
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask

from .._actions import Resubmission
from .._exceptions import InvalidTaskState, StoreUnavailable, TaskNotFound, TaskNotRegistered
from .._models import TaskStatus, utcnow
from ..stores import InvalidCursor
from ._audit import AuditLog
from ._manager import TaskManager
from ._payloads import record_dict
from ._supervision import actors_payload, policies_payload

MAX_PAGE = 1000
MAX_ID_LENGTH = 64
_RELATIVE = re.compile(r"^(\d{1,6})(s|m|min|h|d)$")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_HISTORY_UNITS = {"min": 60, "hour": 3600, "day": 86400}


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _not_found() -> JSONResponse:
    return _error(404, "Task not found")


def unavailable(exc: StoreUnavailable) -> JSONResponse:
    """503: the store did not answer (a retry later may succeed)."""
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})


def parse_statuses(value: str | None) -> frozenset[TaskStatus] | None:
    """`status=failed,interrupted` -> the set of statuses; ValueError naming the allowed values."""
    if value is None or value == "":
        return None
    try:
        return frozenset(TaskStatus(part.strip().lower()) for part in value.split(","))
    except ValueError:
        allowed = ", ".join(s.value for s in TaskStatus)
        raise ValueError(f"status must be one or more of: {allowed}") from None


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """`since` as an ISO 8601 time (naive = UTC) or a window back from now: 30s, 15m, 6h, 7d."""
    if value is None or value == "":
        return None
    match = _RELATIVE.match(value)
    if match:
        return (now or utcnow()) - timedelta(seconds=int(match[1]) * _UNITS[match[2]])
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("since must be an ISO 8601 time or a window such as 30m, 6h or 7d") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_tag(value: str | None) -> tuple[str, str] | None:
    """`tag=key:value` (or key=value) -> (key, value)."""
    if value is None or value == "":
        return None
    for sep in (":", "="):
        key, found, tag_value = value.partition(sep)
        if found and key:
            return key, tag_value
    raise ValueError("tag must look like key:value")


def retry_answer(run: Resubmission) -> dict[str, Any]:
    """A retry's JSON: the id of the task that runs it (the same for concurrent retries of one task), its
    record when this instance has it, and whether this request created it."""
    return {
        "task_id": run.task_id,
        "task": run.record.to_dict() if run.record is not None else None,
        "created": run.created,
    }


def build_api_router(
    manager: TaskManager,
    audit: AuditLog,
    *,
    dependencies: Sequence[params.Depends] = (),
    display_func_args: bool = False,
) -> APIRouter:
    """The JSON routes, bound to one manager; actions go to `audit`. `dependencies` guard every route."""
    router = APIRouter(dependencies=list(dependencies), tags=["tasks"])

    async def audited(
        request: Request, action: str, target: str | None, response: JSONResponse, detail: str | None = None
    ) -> JSONResponse:
        if detail is None and response.status_code >= 400:
            detail = bytes(response.body).decode("utf-8", "replace")[:300]
        await audit.record(request, action, target, response.status_code, detail)
        return response

    async def task_dict(task_id: str) -> dict[str, Any]:
        record = await manager.actions.find(task_id)
        return record_dict(record, display_func_args, instance=manager.actions.instance_of(record))

    @router.get("", summary="List tasks, newest first")
    async def list_tasks(
        status: Annotated[str | None, Query(max_length=200)] = None,
        func_name: Annotated[str | None, Query(max_length=300)] = None,
        tag: Annotated[str | None, Query(max_length=500)] = None,
        since: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
    ) -> Any:
        try:
            filters = {
                "statuses": parse_statuses(status),
                "tag": parse_tag(tag),
                "since": parse_since(since),
            }
            if cursor is not None and limit is None:
                limit = 100
            page = await manager.actions.query_history(
                func_name=func_name or None, limit=limit, cursor=cursor, **filters
            )
        except InvalidCursor:
            return _error(400, "cursor is invalid: pass the X-Next-Cursor value of a previous page")
        except StoreUnavailable as exc:
            return unavailable(exc)
        except ValueError as exc:
            return _error(400, str(exc))
        headers = {"X-Next-Cursor": page.next_cursor} if page.next_cursor else {}
        return JSONResponse([r.to_dict() for r in page.records], headers=headers)

    @router.get("/metrics", summary="Counts, success rate, durations and throughput")
    async def metrics() -> Any:
        return await manager.actions.metrics()

    @router.get("/supervision", summary="The supervision tree and the registered task functions")
    async def supervision() -> Any:
        stats = manager.statistics().supervisor
        return {
            "running": manager.is_running,
            "supervisor": dataclasses.asdict(stats) if stats is not None else None,
            "functions": [
                {
                    "name": d.name,
                    "registered": d.registered,
                    # Where the body runs: a worker process, the event loop, or a worker thread.
                    "kind": "process" if d.executor == "process" else "async" if d.is_async else "sync",
                    "queue": d.queue,
                    "priority": d.priority,
                    "persist": d.config.persist,
                    "group": d.supervisor_policy.name,
                    "requeue_on_interrupt": d.config.requeue_on_interrupt,
                    "policy": {
                        "name": d.policy.name,
                        "retries": d.policy.retries,
                        "delay": d.policy.delay,
                        "backoff": d.policy.backoff,
                        "max_delay": d.policy.max_delay,
                        "jitter": d.policy.jitter,
                        "timeout": d.policy.timeout,
                    },
                }
                for d in manager.registry.definitions()
            ],
            "actors": actors_payload(manager),
            "config": policies_payload(manager),
        }

    @router.delete("/history", summary="Forget finished tasks older than a window")
    async def delete_history(
        request: Request,
        value: Annotated[int, Query(gt=0, le=1_000_000)],
        unit: Annotated[str, Query(max_length=10)],
    ) -> Any:
        window = f"older than {value} {unit}{'' if value == 1 else 's'}"
        if unit not in _HISTORY_UNITS:
            return await audited(
                request, "delete_history", window, _error(400, "unit must be one of: min, hour, day")
            )
        cutoff = utcnow() - timedelta(seconds=value * _HISTORY_UNITS[unit])
        try:
            deleted = await manager.actions.delete_history(cutoff)
        except StoreUnavailable as exc:
            return await audited(request, "delete_history", window, unavailable(exc))
        summary = f"deleted {deleted['deleted']} finished task{'' if deleted['deleted'] == 1 else 's'}"
        return await audited(request, "delete_history", window, JSONResponse(deleted), summary)

    @router.get("/{task_id}", summary="One task")
    async def get_task(task_id: str) -> Any:
        if len(task_id) > MAX_ID_LENGTH:
            return _not_found()
        try:
            return await task_dict(task_id)
        except TaskNotFound:
            return _not_found()
        except StoreUnavailable as exc:
            return unavailable(exc)

    @router.post("/{task_id}/retry", summary="Retry a failed or interrupted task as a new task")
    async def retry_task(request: Request, task_id: str) -> Any:
        target = task_id[:MAX_ID_LENGTH]
        if len(task_id) > MAX_ID_LENGTH:
            return await audited(request, "retry", target, _not_found())
        try:
            run = await manager.actions.retry(task_id)
        except TaskNotFound:
            return await audited(request, "retry", target, _not_found())
        except StoreUnavailable as exc:
            return await audited(request, "retry", target, unavailable(exc))
        except InvalidTaskState as exc:
            return await audited(request, "retry", target, _error(400, str(exc)))
        except TaskNotRegistered as exc:
            return await audited(request, "retry", target, _error(409, str(exc)))
        response = JSONResponse(
            retry_answer(run),
            background=BackgroundTask(manager.launcher.start, run.task_id) if run.created else None,
        )
        detail = f"new task {run.task_id}" if run.created else f"already retried as task {run.task_id}"
        return await audited(request, "retry", target, response, detail)

    @router.post("/{task_id}/cancel", summary="Cancel a pending or running task")
    async def cancel_task(request: Request, task_id: str) -> Any:
        target = task_id[:MAX_ID_LENGTH]
        if len(task_id) > MAX_ID_LENGTH:
            return await audited(request, "cancel", target, _not_found())
        try:
            record = manager.actions.cancel(task_id)
        except TaskNotFound:
            return await audited(request, "cancel", target, _not_found())
        except InvalidTaskState as exc:
            return await audited(request, "cancel", target, _error(400, str(exc)))
        response = JSONResponse({"task_id": record.task_id, "task": record.to_dict()})
        return await audited(request, "cancel", target, response)

    return router
