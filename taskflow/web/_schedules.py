"""The schedules' routes: `GET {p}/schedules` (each periodic schedule with its next and last run, and the
waiting one-off runs), and the actions `POST {p}/schedules/{name}/pause`, `/resume`, `/run` (run now: an
extra run, not a slot) and `POST {p}/schedules/once/{run_key}/cancel`.

Every action goes through the same guard as the other routes (sessions, CSRF, read-only users refused)
and is written to the audit log, refusals included. Bad input answers a 4xx JSON `{"detail": ...}`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, params
from fastapi.responses import JSONResponse

from .._exceptions import InvalidTaskState, ScheduleNotFound, StoreUnavailable, TaskNotFound
from .._models import isoformat
from ._api import unavailable
from ._audit import AuditLog
from ._manager import TaskManager

MAX_NAME = 300
"""Longest schedule name or run key a route accepts (longer ones are refused with a 422)."""
Name = Annotated[str, Path(min_length=1, max_length=MAX_NAME)]


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def build_schedule_router(
    manager: TaskManager, audit: AuditLog, *, dependencies: Sequence[params.Depends] = ()
) -> APIRouter:
    """The schedule routes, bound to one manager; actions go to `audit`."""
    router = APIRouter(dependencies=list(dependencies), tags=["schedules"])

    async def last_run(task_id: str | None) -> dict[str, Any] | None:
        if task_id is None:
            return None
        try:
            record = await manager.actions.find(task_id)
        except TaskNotFound:
            return {"task_id": task_id, "status": None}
        return {
            "task_id": task_id, "status": record.status.value, "created_at": isoformat(record.created_at),
            "end_time": isoformat(record.end_time), "error": record.error,
            "trigger": record.tags.get("trigger"),
        }  # fmt: skip

    async def act(
        request: Request, action: str, target: str, do: Callable[[], Awaitable[dict[str, Any]]]
    ) -> JSONResponse:
        try:
            response = JSONResponse(await do())
        except ScheduleNotFound as exc:
            response = _error(404, str(exc))
        except InvalidTaskState as exc:
            response = _error(409, str(exc))
        except StoreUnavailable as exc:
            response = unavailable(exc)
        detail = None if response.status_code < 400 else bytes(response.body).decode("utf-8", "replace")[:300]
        await audit.record(request, action, target, response.status_code, detail)
        return response

    @router.get("/schedules", summary="Periodic schedules with their next and last run; waiting one-offs")
    async def list_schedules(limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
        try:
            infos = await manager.schedules()
            waiting = await manager.list_scheduled(limit=limit)
        except StoreUnavailable as exc:
            return unavailable(exc)
        schedules = []
        for info in infos:
            item = info.to_dict()
            item["last_run"] = await last_run(info.last_run_id)
            schedules.append(item)
        return {
            "schedules": schedules,
            "one_offs": [entry.to_dict() for entry in waiting],
            "scheduler": manager.scheduler.statistics(),
        }

    @router.post("/schedules/{name}/pause", summary="Pause a schedule (its slots are skipped)")
    async def pause(request: Request, name: Name) -> Any:
        async def do() -> dict[str, Any]:
            await manager.pause_schedule(name)
            return {"name": name, "paused": True}

        return await act(request, "schedule_pause", name, do)

    @router.post("/schedules/{name}/resume", summary="Resume a paused schedule from its next slot")
    async def resume(request: Request, name: Name) -> Any:
        async def do() -> dict[str, Any]:
            await manager.resume_schedule(name)
            return {"name": name, "paused": False}

        return await act(request, "schedule_resume", name, do)

    @router.post("/schedules/{name}/run", summary="Run a schedule's task now (an extra run, not a slot)")
    async def run_now(request: Request, name: Name) -> Any:
        async def do() -> dict[str, Any]:
            return {"name": name, "task_id": await manager.run_schedule_now(name)}

        return await act(request, "schedule_run_now", name, do)

    @router.post("/schedules/once/{run_key}/cancel", summary="Cancel a waiting one-off run")
    async def cancel_once(request: Request, run_key: Name) -> Any:
        async def do() -> dict[str, Any]:
            if not await manager.cancel_scheduled(run_key):
                raise ScheduleNotFound(f"no waiting one-off run has the run key {run_key!r}")
            return {"run_key": run_key, "cancelled": True}

        return await act(request, "schedule_cancel_once", run_key, do)

    return router
