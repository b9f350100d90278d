"""The dashboard's routes: the page, its static assets, the SSE stream and the task-id search.

The page and its assets are package files (`taskflow/web/static/`), served from memory with an ETag; no CDN,
no external fonts. The page carries its configuration in `data-` attributes (HTML-escaped), so it needs no
inline script and the Content-Security-Policy can forbid them. The task table pages through the JSON API
(`GET {p}?limit=&cursor=`); live changes arrive on the stream (see `_sse`).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cache
from html import escape
from importlib import resources
from string import Template
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, params
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from .._exceptions import StoreUnavailable
from ._api import unavailable
from ._auth import SECURITY_HEADERS
from ._payloads import change_event
from ._sse import ChangeBus

_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
ASSETS = (
    "dashboard.css",
    "dashboard.js",
    "audit.js",
    "deadletters.js",
    "schedules.js",
    "queues.js",
    "favicon.svg",
)
MAX_SEARCH = 50
_NOSNIFF = {"X-Content-Type-Options": "nosniff"}


@dataclass(frozen=True, slots=True)
class Asset:
    """A static file held in memory with its content type and ETag."""

    body: bytes
    media_type: str
    etag: str


@cache
def asset(name: str) -> Asset:
    """A file from the package's `static/` folder (KeyError for anything not in ASSETS)."""
    if name not in ASSETS and name not in ("dashboard.html", "login.html"):
        raise KeyError(name)
    body = resources.files(__package__).joinpath("static", name).read_bytes()
    suffix = name[name.rfind(".") :]
    return Asset(body, _TYPES.get(suffix, "text/html; charset=utf-8"), hashlib.sha256(body).hexdigest()[:16])


def asset_url(prefix: str, name: str) -> str:
    """The versioned URL of an asset (the version changes whenever the file does)."""
    return f"{prefix}/dashboard/static/{name}?v={asset(name).etag}"


@dataclass(frozen=True, slots=True)
class DashboardConfig:
    """What the page needs to know about the admin that serves it."""

    prefix: str
    title: str
    auth: bool
    display_func_args: bool
    poll_interval: float
    page_size: int = 50


def render_page(config: DashboardConfig, *, can_act: bool = True) -> str:
    """The dashboard HTML with every substituted value escaped; `can_act` False hides the actions."""
    values = {
        "can_act": "1" if can_act else "",
        "audit_js": asset_url(config.prefix, "audit.js"),
        "deadletters_js": asset_url(config.prefix, "deadletters.js"),
        "schedules_js": asset_url(config.prefix, "schedules.js"),
        "queues_js": asset_url(config.prefix, "queues.js"),
        "title": config.title,
        "base": config.prefix,
        "auth": "1" if config.auth else "",
        "args": "1" if config.display_func_args else "",
        "page_size": str(config.page_size),
        "css": asset_url(config.prefix, "dashboard.css"),
        "js": asset_url(config.prefix, "dashboard.js"),
        "icon": asset_url(config.prefix, "favicon.svg"),
    }
    template = Template(asset("dashboard.html").body.decode())
    return template.substitute({k: escape(v, quote=True) for k, v in values.items()})


def build_dashboard_router(
    config: DashboardConfig,
    bus: ChangeBus,
    *,
    viewer: Callable[[Request], Awaitable[bool | None]] | None = None,
    dependencies: Sequence[params.Depends] = (),
) -> APIRouter:
    """The dashboard routes. `viewer` says whether the request is signed in (None: redirect to the login)
    and may act (True) or only look (False);
    `dependencies` guard the stream and the search (they answer 401 without a session)."""
    router = APIRouter(include_in_schema=False)
    guarded = list(dependencies)
    login = f"{config.prefix}/auth/login"

    @router.get("/dashboard")
    async def dashboard(request: Request) -> Response:
        can_act = True if viewer is None else await viewer(request)
        if can_act is None:
            return RedirectResponse(login, status_code=302)
        return Response(
            render_page(config, can_act=can_act),
            media_type="text/html; charset=utf-8",
            headers=SECURITY_HEADERS,
        )

    @router.get("/dashboard/static/{name}")
    async def static(name: str, if_none_match: Annotated[str | None, Header()] = None) -> Response:
        # Public on purpose: the login page needs the stylesheet, and these files hold no data.
        if name not in ASSETS:
            return JSONResponse({"detail": "Not found"}, status_code=404)
        item = asset(name)
        headers = {"ETag": f'"{item.etag}"', "Cache-Control": "public, max-age=3600", **_NOSNIFF}
        if if_none_match == headers["ETag"]:
            return Response(status_code=304, headers=headers)
        return Response(item.body, media_type=item.media_type, headers=headers)

    @router.get("/dashboard/stream", dependencies=guarded)
    async def stream(
        last_event_id: Annotated[str | None, Header(max_length=64)] = None,
        resume: Annotated[str | None, Query(max_length=64)] = None,
    ) -> Response:
        # `resume` is for clients that reconnect by hand (EventSource cannot set the Last-Event-ID header).
        body = event_stream(bus, last_event_id or resume, config.poll_interval)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **_NOSNIFF}
        return StreamingResponse(body, media_type="text/event-stream", headers=headers)

    @router.get("/dashboard/search", dependencies=guarded)
    async def search(q: Annotated[str, Query(min_length=1, max_length=64)]) -> Any:
        # The JSON list filters by status, function, tag and time but not by id: this is the id search box.
        # It matches what the table shows (the short id) as well as the start of the full id.
        text = q.strip().lower()
        try:
            page = await bus.manager.query_history(task_id_search=text, limit=MAX_SEARCH)
        except StoreUnavailable as exc:
            return unavailable(exc)
        except TypeError as exc:  # a custom store written before `task_id_search`: full-id prefixes only
            if "task_id_search" not in str(exc):
                raise
            page = await bus.manager.query_history(task_id_prefix=text, limit=MAX_SEARCH)
        return [change_event(r) for r in page.records]

    return router


async def event_stream(bus: ChangeBus, last_event_id: str | None, poll_interval: float) -> AsyncIterator[str]:
    """The text of `GET {p}/dashboard/stream`: snapshot or replay, then changes and keep-alives."""
    sub = bus.subscribe()
    try:
        resume = bus.resume_point(last_event_id)
        yield "retry: 3000\n\n"
        if resume is None:
            # The first page and the figures come from the store when there is one (history from before a
            # restart, and every instance's tasks). The position is taken before those queries: what the
            # flusher publishes while they run may be missing from the page, so it is sent after it.
            seq = bus.seq
            await bus.fresh_metrics()
            try:
                first = await bus.manager.query_history(limit=bus.page_size)
            except StoreUnavailable:  # the store is down: this process's tasks now, the stream goes on
                first = bus.manager.query(limit=bus.page_size)
            yield bus.snapshot(sub, first, seq=seq)
        else:
            sub.seq = resume
        while bus.running and not bus.closed:
            chunk = bus.drain(sub)
            if chunk:
                yield chunk
                continue
            if not await sub.wait(poll_interval) and not bus.closed:
                yield ": keep-alive\n\n"
    finally:
        bus.unsubscribe(sub)
