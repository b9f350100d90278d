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
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import fastapi.dependencies.utils as fastapi_dependency_utils
from fastapi import BackgroundTasks
from starlette.background import BackgroundTask
from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from ._manager import TaskManager


class _Dispatch(BackgroundTask):
    """The Starlette background item that hands one task to its supervisor after the response."""

    def __init__(self, dispatch: Callable[[str], Any], task_id: str) -> None:
        # Skips BackgroundTask.__init__'s callable inspection: this is on the per-task hot path.
        # (BackgroundTask is generic in its callable's ParamSpec, which a plain assignment cannot bind.)
        self.func = dispatch  # type: ignore[assignment]
        self.args = (task_id,)  # type: ignore[assignment]
        self.kwargs = {}  # type: ignore[assignment]
        self.is_async = True


class ManagedBackgroundTasks(BackgroundTasks):
    """A `BackgroundTasks` whose `add_task` creates a tracked, supervised task and returns its id.

    Given the request's own `BackgroundTasks`, it shares its list, so plain tasks added to either object
    still run, in order, after the response.
    """

    def __init__(self, task_manager: TaskManager, background_tasks: BackgroundTasks | None = None) -> None:
        super().__init__()
        self.task_manager = task_manager
        if background_tasks is not None:
            self.tasks = background_tasks.tasks

    def add_task(  # type: ignore[override]  # returns the task id (fastapi-taskflow's contract)
        self,
        func: Callable[..., Any],
        *args: Any,
        idempotency_key: str | None = None,
        tags: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> str:
        """Queue `func(*args, **kwargs)` as a managed task; return its id (an existing id for a held key)."""
        manager = self.task_manager
        task_id, created = manager.submit(func, args, kwargs, idempotency_key=idempotency_key, tags=tags)
        if created:
            self.tasks.append(_Dispatch(manager.dispatch, task_id))
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


class _ServingMiddleware:
    """Marks the requests of one installed app as served by its task manager."""

    def __init__(self, app: ASGIApp, task_manager: TaskManager) -> None:
        self.app = app
        self.task_manager = task_manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _serving.set(self.task_manager)
        try:
            await self.app(scope, receive, send)
        finally:
            _serving.reset(token)


def install_injection(app: Any, task_manager: TaskManager) -> None:
    """Make `BackgroundTasks` parameters of `app`'s routes managed by `task_manager` (only this app)."""
    with _patch_lock:
        names = vars(fastapi_dependency_utils)
        if names["BackgroundTasks"] is not _RequestBackgroundTasks:
            names["BackgroundTasks"] = _RequestBackgroundTasks
    installed: list[Any] | None = getattr(app.state, "taskflow_installed", None)
    if installed is None:
        installed = app.state.taskflow_installed = []
    if task_manager in installed:
        return
    installed.append(task_manager)
    app.add_middleware(_ServingMiddleware, task_manager=task_manager)
