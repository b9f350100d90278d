"""`ManagedBackgroundTasks` and the per-app injection behind `install()`.

FastAPI builds a route's `BackgroundTasks` with the class named `BackgroundTasks` in
`fastapi.dependencies.utils`. `install(app)` swaps that name, once per process, for a subclass whose
constructor asks a context variable which task manager (if any) serves the current request; a small ASGI
middleware on each installed app sets that variable. So a plain `BackgroundTasks` (or
`ManagedBackgroundTasks`) parameter gets a managed object in installed apps only; every other FastAPI app
in the process keeps plain `BackgroundTasks`.
"""

from __future__ import annotations

import contextvars
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import fastapi.dependencies.utils as fastapi_dependency_utils
from fastapi import BackgroundTasks
from starlette.background import BackgroundTask
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._models import TaskRecord
from .._persistence import request_records

if TYPE_CHECKING:
    from ._manager import TaskManager


class _AfterResponse(BackgroundTask):
    """The Starlette background item that starts a request's tasks after the response.

    One item per request (not per task): the ids of every task the request adds go into it, in order.
    """

    def __init__(self, start: Callable[[list[str]], Awaitable[None]]) -> None:
        # Skips BackgroundTask.__init__'s callable inspection (BackgroundTask is generic in its callable's
        # ParamSpec, which a plain assignment cannot bind).
        self.task_ids: list[str] = []
        self.start = start
        self.func = start  # type: ignore[assignment]
        self.args = (self.task_ids,)  # type: ignore[assignment]
        self.kwargs = {}  # type: ignore[assignment]
        self.is_async = True

    def __call__(self) -> Awaitable[None]:  # type: ignore[override]  # Starlette awaits what it returns
        # Hands back `start`'s own coroutine rather than wrapping it in one more (BackgroundTask's
        # `async def __call__`): one coroutine frame fewer per request.
        return self.start(self.task_ids)


class ManagedBackgroundTasks(BackgroundTasks):
    """A `BackgroundTasks` whose `add_task` creates a tracked, supervised task and returns its id.

    Given the request's own `BackgroundTasks`, it shares its list, so plain tasks added to either object
    still run, in order, after the response.
    """

    def __init__(self, task_manager: TaskManager, background_tasks: BackgroundTasks | None = None) -> None:
        super().__init__()
        self.task_manager = task_manager
        self._after_response: _AfterResponse | None = None
        if background_tasks is not None:
            self.tasks = background_tasks.tasks

    def add_task(  # type: ignore[override]  # returns the task id (fastapi-taskflow's contract)
        self,
        func: Callable[..., Any],
        *args: Any,
        idempotency_key: str | None = None,
        tags: dict[str, str] | None = None,
        queue: str | None = None,
        priority: int | None = None,
        **kwargs: Any,
    ) -> str:
        """Queue `func(*args, **kwargs)` as a managed task; return its id (an existing id for a held key).

        `idempotency_key`, `tags`, `queue` and `priority` are taskflow's (reserved: never passed on to
        `func`). `TaskRejected` (`QueueFull`, `BacklogFull`) when there is no room: see docs/queues.md.
        """
        manager = self.task_manager
        task_id, created = manager.launcher.submit(
            func, args, kwargs, idempotency_key=idempotency_key, tags=tags, queue=queue, priority=priority
        )
        if created:
            if self._after_response is None:
                self._after_response = _AfterResponse(manager.launcher.start_after_response)
                self.tasks.append(self._after_response)
            self._after_response.task_ids.append(task_id)
        return task_id


_serving: contextvars.ContextVar[TaskManager | None] = contextvars.ContextVar(
    "taskflow_serving", default=None
)
_patch_lock = threading.Lock()


class _RequestBackgroundTasks(BackgroundTasks):
    """What FastAPI instantiates for a `BackgroundTasks` parameter once any app called `install()`."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        manager = _serving.get()
        if manager is None:
            return BackgroundTasks(*args, **kwargs)
        return ManagedBackgroundTasks(manager)


@dataclass
class _Wiring:
    """How one task manager is wired into one app (shared with its middleware, built late by Starlette)."""

    task_manager: TaskManager
    inject: bool = False


class TaskflowMiddleware:
    """Per request: marks the app's requests as served by its manager (for `install()`), and holds the
    response back until the durable tasks the request added are committed to the store.

    If the store cannot confirm in time, the response is replaced by a 503 and those tasks are refused
    (CANCELLED, reason "store_unavailable"): a client never holds the id of a task that could be lost.
    Present only where it has one of those jobs: added by `install()`, and by `TaskAdmin` / `init_app()`
    for a manager with a store.
    """

    def __init__(self, app: ASGIApp, wiring: _Wiring) -> None:
        self.app = app
        self.wiring = wiring

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        manager = self.wiring.task_manager
        serving = _serving.set(manager) if self.wiring.inject else None
        try:
            if manager.launcher.is_persistent:
                await self._durably(manager, scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            if serving is not None:
                _serving.reset(serving)

    async def _durably(self, manager: TaskManager, scope: Scope, receive: Receive, send: Send) -> None:
        added: list[TaskRecord] = []
        token = request_records.set(added)
        refused = False

        async def send_after_commit(message: Message) -> None:
            nonlocal refused
            if refused:
                return  # the app's own response is dropped: a 503 went out instead
            starting = message["type"] == "http.response.start"
            if starting and added and not await manager.launcher.make_durable(list(added)):
                refused = True
                for record in added:
                    manager.launcher.refuse(record, "store_unavailable")
                await _send_unavailable(send)
                return
            await send(message)

        try:
            await self.app(scope, receive, send_after_commit)
        finally:
            request_records.reset(token)


async def _send_unavailable(send: Send) -> None:
    body = json.dumps({"detail": "the task store is unavailable; the tasks were not accepted"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _wiring(app: Any, task_manager: TaskManager) -> _Wiring:
    wirings: list[_Wiring] | None = getattr(app.state, "taskflow_wirings", None)
    if wirings is None:
        wirings = app.state.taskflow_wirings = []
    for wiring in wirings:
        if wiring.task_manager is task_manager:
            return wiring
    wiring = _Wiring(task_manager)
    wirings.append(wiring)
    app.add_middleware(TaskflowMiddleware, wiring=wiring)
    return wiring


def attach_middleware(app: Any, task_manager: TaskManager) -> None:
    """Add the per-request middleware of `task_manager` to `app` (once), if it has a store.

    Without a store no commit ever holds a response back, so until `install()` asks for injection (which
    adds it then) the middleware would only pass each request on: one ASGI layer per request for nothing.
    """
    if task_manager.actions.persistence is not None:
        _wiring(app, task_manager)


def install_injection(app: Any, task_manager: TaskManager) -> None:
    """Make `BackgroundTasks` parameters of `app`'s routes managed by `task_manager` (only this app)."""
    with _patch_lock:
        names = vars(fastapi_dependency_utils)
        if names["BackgroundTasks"] is not _RequestBackgroundTasks:
            names["BackgroundTasks"] = _RequestBackgroundTasks
    _wiring(app, task_manager).inject = True
