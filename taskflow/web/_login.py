"""The sign-in routes: `GET/POST {p}/auth/login`, `GET/POST {p}/auth/logout` (0.5.0's; POST logout is new)
and `POST {p}/auth/revoke-all` (new: void every session at once).

Every sign-in, failed sign-in, refused (throttled) sign-in, sign-out and revocation goes to the audit log.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qs

import anyio
from fastapi import APIRouter, Request, params
from fastapi.responses import JSONResponse, RedirectResponse, Response

from ._audit import AuditLog, client_address
from ._auth import COOKIE_NAME, SessionGuard, login_page, same_origin
from ._throttle import LoginThrottle

MAX_LOGIN_BODY = 8192
MAX_USERNAME = 200


async def _read_form(request: Request) -> dict[str, str]:
    # Parsed here rather than with FastAPI's Form(), which would need python-multipart for two fields.
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LOGIN_BODY:
            return {}
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    return {k: v[0] for k, v in fields.items() if v}


def build_auth_router(
    guard: SessionGuard,
    audit: AuditLog,
    throttle: LoginThrottle,
    *,
    prefix: str,
    title: str,
    css_url: str,
    dependencies: Sequence[params.Depends] = (),
) -> APIRouter:
    """The login, logout and revoke-all routes; `dependencies` (the session guard) protect revoke-all."""
    router = APIRouter(include_in_schema=False)
    dashboard, login = f"{prefix}/dashboard", f"{prefix}/auth/login"

    def page(error: str = "", status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return login_page(prefix, title, css_url, error, status, headers)

    @router.get("/auth/login")
    async def login_form(request: Request) -> Response:
        if await guard.sessions.check(request.cookies.get(COOKIE_NAME)) is not None:
            return RedirectResponse(dashboard, status_code=302)
        return page()

    @router.post("/auth/login")
    async def login_submit(request: Request) -> Response:
        if not same_origin(request):
            return page("Cross-site sign-in refused.", 403)
        form = await _read_form(request)
        username, password = form.get("username", "")[:MAX_USERNAME], form.get("password", "")
        keys = [f"client:{client_address(request, guard.trust_proxy)}"] + (
            [f"user:{username}"] if username else []
        )
        wait = throttle.retry_after(keys)
        if wait:
            await audit.record(request, "login_throttled", None, 429, f"retry after {wait} s", actor=username)
            return page(f"Too many failed sign-ins: try again in {wait} s.", 429, {"Retry-After": str(wait)})
        # The backend may query a database or a directory: keep it off the event loop.
        check = guard.backend.authenticate_user
        ok = bool(username) and await anyio.to_thread.run_sync(check, username, password)
        if not ok:
            throttle.failed(keys)
            await audit.record(request, "login_failed", None, 401, actor=username or "(empty)")
            return page("Invalid username or password.", 401)
        throttle.succeeded(keys)
        read_only = await anyio.to_thread.run_sync(guard.is_read_only, username)
        token = await guard.sessions.issue(username, read_only=read_only)
        await audit.record(request, "login", None, "ok", "read-only" if read_only else None, actor=username)
        response = RedirectResponse(dashboard, status_code=302)
        response.set_cookie(value=token, **guard.cookie_options(request))
        return response

    async def logout(request: Request) -> Response:
        claims = await guard.sessions.check(request.cookies.get(COOKIE_NAME))
        if claims is not None:
            # Revoked on the server: a copy of the cookie (a shared machine, a leaked log) is dead too.
            await guard.sessions.revoke(claims)
            await audit.record(request, "logout", None, "ok", actor=claims.user)
        response = RedirectResponse(login, status_code=302)
        options = guard.cookie_options(request)
        response.delete_cookie(COOKIE_NAME, path="/", secure=options["secure"], httponly=True, samesite="lax")
        return response

    router.add_api_route("/auth/logout", logout, methods=["GET", "POST"])

    @router.post("/auth/revoke-all", dependencies=list(dependencies))
    async def revoke_all(request: Request) -> Response:
        version = await guard.sessions.revoke_all()
        await audit.record(request, "revoke_sessions", None, "ok", f"session version {version}")
        return JSONResponse({"revoked": True, "session_version": version})

    return router
