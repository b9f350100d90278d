"""The Queues API.

`GET {p}/queues` lists each declared queue's limits and counts (`queue_stats()`); `PATCH {p}/queues/{name}`
changes the limits given in its JSON body, and only those (`{"concurrency": 8}` leaves `max_size` alone;
`null` means no limit), behind the same session, CSRF and read-only checks as every other action, and is
audited as `update_queue`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, params
from fastapi.responses import JSONResponse

from .._exceptions import ConfigurationError
from .._queues import UnknownQueue
from ._audit import AuditLog
from ._deadletters import read_body
from ._manager import TaskManager

MAX_BODY = 1024
"""Most bytes a PATCH body may have (two small numbers fit many times over)."""
_SETTINGS = ("concurrency", "max_size")


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def parse_changes(raw: bytes) -> dict[str, int | None]:
    """The limits a PATCH body sets, checked; ValueError saying what is wrong."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ValueError('the body must be a JSON object such as {"concurrency": 4, "max_size": 1000}')
    unknown = sorted(set(body) - set(_SETTINGS))
    if unknown:
        raise ValueError(f"unknown settings {unknown}: only concurrency and max_size can change")
    if not body:
        raise ValueError("give concurrency, max_size or both")
    for key, value in body.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{key} must be a positive integer or null (no limit), got {value!r}")
    return body


def build_queue_router(
    manager: TaskManager, audit: AuditLog, *, dependencies: Sequence[params.Depends] = ()
) -> APIRouter:
    """The queue routes, bound to one manager; changes go to `audit`."""
    router = APIRouter(dependencies=list(dependencies), tags=["tasks"])

    @router.get("/queues", summary="Each declared queue's limits and counts")
    async def queues() -> Any:
        return manager.queue_stats()

    @router.patch("/queues/{name}", summary="Change a queue's concurrency and/or max_size, live")
    async def update_queue(request: Request, name: Annotated[str, Path(max_length=100)]) -> Any:
        try:
            changes = parse_changes(await read_body(request, MAX_BODY))
        except ValueError as exc:
            response = _error(400, str(exc))
        else:
            try:
                stats = manager.update_queue_config(name, **changes)
            except UnknownQueue as exc:
                response = _error(404, str(exc))
            except ConfigurationError as exc:  # checked above: kept so a bad value never becomes a 500
                response = _error(400, str(exc))
            else:
                detail = ", ".join(f"{k}={'none' if v is None else v}" for k, v in changes.items())
                await audit.record(request, "update_queue", name, 200, detail)
                return stats
        detail = bytes(response.body).decode("utf-8", "replace")[:300]
        await audit.record(request, "update_queue", name, response.status_code, detail)
        return response

    return router
