"""`TaskAdmin`: mounts the task API, the dashboard and its login on an app, and ties the task manager (and
the dashboard's change bus) to the app's lifespan."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request

from .._exceptions import ConfigurationError
from ._api import build_api_router
from ._auth import SessionGuard, TokenSigner, build_auth_router, resolve_auth
from ._dashboard import DashboardConfig, asset_url, build_dashboard_router
from ._manager import TaskManager
from ._prometheus import build_prometheus_router
from ._router import AdminRouter
from ._sse import ChangeBus


class TaskAdmin:
    """Mount the task API and the dashboard at `path` and run `task_manager` for the app's lifetime.

    The parameters are fastapi-taskflow 0.5.0's (plus `title`, 0.5.1). With `auth`, every route (JSON API,
    dashboard, stream) needs a session from `{path}/auth/login`; give a `secret_key` when the app runs in
    several workers, or each worker signs sessions with its own random key. `auto_install=True` also makes
    plain `BackgroundTasks` parameters managed (in this app only).
    """

    def __init__(
        self,
        app: FastAPI,
        task_manager: TaskManager,
        path: str = "/tasks",
        display_func_args: bool = False,
        auto_install: bool = False,
        auth: Any = None,
        token_expiry: int = 86400,
        secret_key: str | None = None,
        poll_interval: float = 30.0,
        title: str = "taskflow",
    ) -> None:
        if not isinstance(path, str) or not path.startswith("/") or path.endswith("/"):
            raise ConfigurationError(f"path must start with '/' and not end with one, got {path!r}")
        if (
            isinstance(poll_interval, bool)
            or not isinstance(poll_interval, int | float)
            or not (math.isfinite(poll_interval) and poll_interval > 0)
        ):
            raise ConfigurationError(f"poll_interval must be a positive number of seconds: {poll_interval!r}")
        if not isinstance(title, str):
            raise ConfigurationError(f"title must be a str, got {type(title).__name__}")
        backend = resolve_auth(auth)  # TypeError for anything else, as in 0.5.0
        try:
            signer = TokenSigner(secret_key, token_expiry)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        self.app = app
        self.task_manager = task_manager
        self.path = path
        self.display_func_args = display_func_args
        self.token_expiry = token_expiry
        self.poll_interval = float(poll_interval)
        self.title = title
        self.guard = SessionGuard(backend, signer) if backend is not None else None
        self.bus = ChangeBus(task_manager, display_func_args=display_func_args)
        config = DashboardConfig(path, title, backend is not None, display_func_args, self.poll_interval)

        guard = self.guard
        dependencies = []
        signed_in = None
        if guard is not None:

            def require_session(request: Request) -> None:
                refusal = guard.check(request, request.method)
                if refusal is not None:
                    raise HTTPException(status_code=refusal[0], detail=refusal[1])

            def signed_in(request: Request) -> bool:
                return guard.user(request) is not None

            dependencies = [Depends(require_session)]
            css = asset_url(path, "dashboard.css")
        admin = AdminRouter(path)
        if guard is not None:
            admin.include_router(build_auth_router(guard, prefix=path, title=title, css_url=css), prefix=path)
        # The dashboard before the JSON routes, so `/dashboard` is not taken for a task id.
        dashboard = build_dashboard_router(config, self.bus, signed_in=signed_in, dependencies=dependencies)
        admin.include_router(dashboard, prefix=path)
        admin.include_router(build_prometheus_router(task_manager, dependencies=dependencies), prefix=path)
        admin.include_router(
            build_api_router(task_manager, dependencies=dependencies, display_func_args=display_func_args),
            prefix=path,
        )
        app.include_router(admin)
        self._run_bus_in_lifespan(app)
        if auto_install:
            task_manager.install(app)
        task_manager.init_app(app)

    def __repr__(self) -> str:
        return f"TaskAdmin(path={self.path!r}, auth={self.guard is not None}, title={self.title!r})"

    def _run_bus_in_lifespan(self, app: FastAPI) -> None:
        # Wrapped before init_app wraps it again, so the streams close before the manager drains its tasks.
        original = app.router.lifespan_context
        bus = self.bus

        @asynccontextmanager
        async def lifespan(asgi_app: Any) -> AsyncIterator[Any]:
            async with bus.run(), original(asgi_app) as state:
                yield state

        app.router.lifespan_context = lifespan
