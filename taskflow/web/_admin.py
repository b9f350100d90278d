"""`TaskAdmin`: mounts the task API, the dashboard and its login on an app, and ties the task manager (and
the dashboard's change bus) to the app's lifespan."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request

from .._exceptions import ConfigurationError
from ._api import build_api_router
from ._audit import AuditLog, build_audit_router
from ._auth import SessionGuard, resolve_auth
from ._dashboard import DashboardConfig, asset_url, build_dashboard_router
from ._deadletters import build_dead_letter_router
from ._login import build_auth_router
from ._manager import TaskManager
from ._prometheus import build_prometheus_router
from ._queues import build_queue_router
from ._router import AdminRouter
from ._schedules import build_schedule_router
from ._sessions import ApiTokens, Sessions, warn_random_key
from ._sse import ChangeBus
from ._throttle import LoginThrottle
from ._tokens import TokenSigner


class TaskAdmin:
    """Mount the task API and the dashboard at `path` and run `task_manager` for the app's lifetime.

    The parameters are fastapi-taskflow 0.5.0's (plus `title`, 0.5.1). With `auth`, every route (JSON API,
    dashboard, stream) needs a session from `{path}/auth/login`; give a `secret_key` when the app runs in
    several workers, or each worker signs sessions with its own random key. `auto_install=True` also makes
    plain `BackgroundTasks` parameters managed (in this app only).

    Additive options (docs/operations.md): `read_only_users` may look but not act; `api_tokens`
    (`{name: (token, "read" | "write")}`) are bearer tokens for automation; `trust_proxy_headers` honours
    `X-Forwarded-Proto` / `X-Forwarded-For` (only behind a proxy that sets them); `audit_max_entries` bounds
    the audit log.
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
        secret_key: str | Sequence[str] | None = None,
        poll_interval: float = 30.0,
        title: str = "taskflow",
        *,
        read_only_users: Collection[str] = (),
        api_tokens: Mapping[str, tuple[str, str]] | None = None,
        trust_proxy_headers: bool = False,
        audit_max_entries: int = 100_000,
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
        if (
            isinstance(audit_max_entries, bool)
            or not isinstance(audit_max_entries, int)
            or audit_max_entries < 1
        ):
            raise ConfigurationError(f"audit_max_entries must be an int >= 1, got {audit_max_entries!r}")
        if isinstance(read_only_users, str) or not all(isinstance(u, str) for u in read_only_users):
            raise ConfigurationError("read_only_users must be a collection of user names (str)")
        try:
            signer = TokenSigner(secret_key, token_expiry)
            tokens = ApiTokens(api_tokens)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(str(exc)) from None
        if backend is None and (tokens or read_only_users):
            raise ConfigurationError(
                "api_tokens and read_only_users need auth= as well (they refine who may do what)"
            )
        if backend is not None and signer.random_key:
            warn_random_key()
        self.app = app
        self.task_manager = task_manager
        self.path = path
        self.display_func_args = display_func_args
        self.token_expiry = token_expiry
        self.poll_interval = float(poll_interval)
        self.title = title

        def running_store() -> object | None:
            persistence = task_manager.actions.persistence
            return persistence.store if persistence is not None and persistence.active else None

        self.audit = audit = AuditLog(running_store, keep=audit_max_entries, trust_proxy=trust_proxy_headers)
        self.guard = None
        if backend is not None:
            self.guard = SessionGuard(
                backend, Sessions(signer, running_store), api_tokens=tokens,
                read_only_users=read_only_users, trust_proxy=trust_proxy_headers,
            )  # fmt: skip
        self.bus = ChangeBus(task_manager, display_func_args=display_func_args)
        config = DashboardConfig(path, title, backend is not None, display_func_args, self.poll_interval)

        guard = self.guard
        dependencies = []
        viewer = None
        if guard is not None:

            async def require_session(request: Request) -> None:
                refusal = await guard.check(request, request.method)
                if refusal is not None:
                    if refusal[0] == 403:  # a signed-in principal tried to act and may not
                        await audit.record(
                            request, f"{request.method} {request.url.path}", None, 403, refusal[1]
                        )
                    raise HTTPException(status_code=refusal[0], detail=refusal[1])

            async def viewer(request: Request) -> bool | None:
                principal = await guard.principal(request)
                return None if principal is None else principal.can_act

            dependencies = [Depends(require_session)]
        admin = AdminRouter(path)
        if guard is not None:
            css = asset_url(path, "dashboard.css")
            login = build_auth_router(
                guard,
                audit,
                LoginThrottle(),
                prefix=path,
                title=title,
                css_url=css,
                dependencies=dependencies,
            )
            admin.include_router(login, prefix=path)
        # The dashboard and the audit log before the JSON routes, so neither is taken for a task id.
        dashboard = build_dashboard_router(config, self.bus, viewer=viewer, dependencies=dependencies)
        admin.include_router(dashboard, prefix=path)
        admin.include_router(build_prometheus_router(task_manager, dependencies=dependencies), prefix=path)
        admin.include_router(build_audit_router(audit, dependencies=dependencies), prefix=path)
        dead_letters = build_dead_letter_router(task_manager, audit, dependencies=dependencies)
        admin.include_router(dead_letters, prefix=path)
        admin.include_router(build_queue_router(task_manager, audit, dependencies=dependencies), prefix=path)
        admin.include_router(
            build_schedule_router(task_manager, audit, dependencies=dependencies), prefix=path
        )
        admin.include_router(
            build_api_router(
                task_manager, audit, dependencies=dependencies, display_func_args=display_func_args
            ),
            prefix=path,
        )
        app.include_router(admin)
        self._run_bus_in_lifespan(app)
        if auto_install:
            task_manager.install(app)
        task_manager.init_app(app)

    def __repr__(self) -> str:
        return f"TaskAdmin(path={self.path!r}, auth={self.guard is not None}, title={self.title!r})"

    async def revoke_all_sessions(self) -> int:
        """Sign everybody out: every session issued so far is refused, on every instance sharing the store
        (`POST {path}/auth/revoke-all` does the same over HTTP). Returns the new session version."""
        if self.guard is None:
            raise ConfigurationError("revoke_all_sessions() needs TaskAdmin(auth=...)")
        return await self.guard.sessions.revoke_all()

    def _run_bus_in_lifespan(self, app: FastAPI) -> None:
        # Wrapped before init_app wraps it again, so the streams close before the manager drains its tasks.
        original = app.router.lifespan_context
        bus = self.bus

        @asynccontextmanager
        async def lifespan(asgi_app: Any) -> AsyncIterator[Any]:
            async with bus.run(), original(asgi_app) as state:
                yield state

        app.router.lifespan_context = lifespan
