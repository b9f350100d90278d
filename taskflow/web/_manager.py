"""`TaskManager`: the core runtime plus its FastAPI members (`get_tasks`, `install`, `init_app`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import BackgroundTasks, FastAPI

from .._host import RuntimeHost
from .._runtime import TaskRuntime
from ._background import ManagedBackgroundTasks, attach_middleware, install_injection
from ._rejections import handle_rejections


class TaskManager(TaskRuntime):
    """Declares tasks, tracks them and owns their supervision tree (see TaskRuntime for the options).

    Wire it into an app with `TaskAdmin(app, task_manager)` (API + lifespan) or `task_manager.init_app(app)`
    (lifespan only). Without a running lifespan, tasks still run after the response, inline, with the same
    retries and tracking.
    """

    _host: RuntimeHost | None = None

    async def get_tasks(self, background_tasks: BackgroundTasks) -> ManagedBackgroundTasks:
        """FastAPI dependency: `tasks = Depends(task_manager.get_tasks)` (no install() needed).

        A coroutine function so that FastAPI calls it on the event loop: a plain `def` dependency costs a
        worker-thread round trip on every request. To wrap a `BackgroundTasks` by hand, construct
        `ManagedBackgroundTasks(task_manager, background_tasks)`.
        """
        if isinstance(background_tasks, ManagedBackgroundTasks) and background_tasks.task_manager is self:
            return background_tasks
        return ManagedBackgroundTasks(self, background_tasks)

    @property
    def fernet(self) -> Any:
        """fastapi-taskflow's attribute, read-only: the `cryptography` Fernet made from `encrypt_args_key`
        (a MultiFernet for a list of keys), or None without encryption. It encrypts the arguments' JSON."""
        return self._cipher.fernet if self._cipher is not None else None

    @property
    def background_tasks(self) -> Callable[[BackgroundTasks], Awaitable[ManagedBackgroundTasks]]:
        """Alias of `get_tasks`, for `Depends(task_manager.background_tasks)`."""
        return self.get_tasks

    def install(self, app: FastAPI) -> None:
        """Make plain `BackgroundTasks` and `ManagedBackgroundTasks` parameters managed, in `app` only.

        Also answers a refused task (`TaskRejected` out of a route) with 429 and `Retry-After`.
        """
        install_injection(app, self)
        handle_rejections(app)

    def init_app(self, app: FastAPI) -> None:
        """Run this manager for the lifetime of `app`, around the app's own lifespan (never replacing it).

        The runtime starts before the app's lifespan (so its startup code can add tasks) and stops after
        it: running tasks are drained for `shutdown_grace` seconds, then cancelled. Idempotent per app.
        A refused task (`TaskRejected` out of a route) is answered with 429 and `Retry-After`.
        """
        handle_rejections(app)
        attached: list[Any] | None = getattr(app.state, "taskflow_lifespans", None)
        if attached is None:
            attached = app.state.taskflow_lifespans = []
        if self in attached:
            return
        attached.append(self)
        attach_middleware(app, self)  # durable tasks are committed before their response is sent
        original = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(asgi_app: Any) -> AsyncIterator[Any]:
            async with self.running(), original(asgi_app) as state:
                yield state

        app.router.lifespan_context = lifespan

    async def startup(self) -> None:
        """Start the runtime outside an `async with` (fastapi-taskflow's API); pair with `shutdown()`."""
        if self._host is not None:
            raise RuntimeError("startup() was already called; call shutdown() first")
        host = RuntimeHost(self)
        await host.start()
        self._host = host

    async def shutdown(self) -> None:
        """Stop what `startup()` started: drain for `shutdown_grace`, then cancel; never raises for a task."""
        host, self._host = self._host, None
        if host is not None:
            await host.stop()
