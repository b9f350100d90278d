"""Dashboard and API authentication: user backends, the session guard, the login and logout routes.

The surface is fastapi-taskflow 0.5.0's (`TaskAdmin(auth=..., secret_key=..., token_expiry=...)`,
`TaskAuthBackend`, cookie `taskflow_token`, `{p}/auth/login` and `{p}/auth/logout`); what is new is that the
guard covers every route (the SSE stream included), the cookie is `Secure` over https, unsafe requests must
come from the dashboard's own origin, logout revokes the session on the server, sign-ins are rate limited,
bearer tokens serve automation and read-only users may look but not act. Tokens are `_tokens`', sessions
and bearer tokens `_sessions`', the login throttle `_throttle`'s.
"""

from __future__ import annotations

import abc
import hmac
from collections.abc import Collection, Sequence
from functools import cache
from html import escape
from importlib import resources
from string import Template
from typing import Any
from urllib.parse import urlsplit

from fastapi.responses import HTMLResponse
from starlette.requests import HTTPConnection

from ._audit import PRINCIPAL_KEY
from ._sessions import ApiTokens, Principal, Sessions

COOKIE_NAME = "taskflow_token"
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class TaskAuthBackend(abc.ABC):
    """Decides who may use the dashboard and API. Subclass it to check users against your own system."""

    @abc.abstractmethod
    def authenticate_user(self, username: str, password: str) -> bool:
        """True when `password` is right for `username` (called in a worker thread: it may block)."""

    def is_read_only(self, username: str) -> bool:
        """True when `username` may see the dashboard and API but not act (retry, cancel, delete history).

        Not abstract: override it to take roles from your own system (called in a worker thread after a
        successful sign-in). `TaskAdmin(read_only_users=...)` names such users too.
        """
        return False


class SimpleAuthBackend(TaskAuthBackend):
    """Fixed user/password pairs, compared in constant time."""

    def __init__(self, users: Sequence[tuple[str, str]]) -> None:
        self._users = [(u.encode(), p.encode()) for u, p in users]

    def authenticate_user(self, username: str, password: str) -> bool:
        """Check every pair without stopping early, so timing says nothing about which names exist."""
        user_b, pw_b = username.encode(), password.encode()
        ok = False
        for user, pw in self._users:
            # `&` rather than `and`: both comparisons always run.
            ok |= hmac.compare_digest(user, user_b) & hmac.compare_digest(pw, pw_b)
        return ok

    def __repr__(self) -> str:
        return f"SimpleAuthBackend(users={[u.decode() for u, _ in self._users]!r}, passwords=***)"


def _is_pair(value: object) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value)


def resolve_auth(auth: object) -> TaskAuthBackend | None:
    """`TaskAdmin(auth=)`: None, a (user, password) tuple, a list of them or a backend; else TypeError."""
    if auth is None or isinstance(auth, TaskAuthBackend):
        return auth
    if _is_pair(auth):
        return SimpleAuthBackend([auth])  # type: ignore[list-item]  # checked by _is_pair
    if isinstance(auth, list) and auth and all(_is_pair(item) for item in auth):
        return SimpleAuthBackend(auth)
    raise TypeError(
        "auth must be a (username, password) tuple of str, a non-empty list of them, or a TaskAuthBackend, "
        f"got {type(auth).__name__}"
    )


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def request_scheme(conn: HTTPConnection, trust_proxy: bool) -> str:
    """`https` when the request came over https: the server's own scheme, or, when proxies are trusted, the
    first `X-Forwarded-Proto` value (the scheme the client used to reach the first proxy)."""
    if trust_proxy:
        forwarded = conn.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        if forwarded in ("http", "https"):
            return forwarded
    return conn.url.scheme


def same_origin(conn: HTTPConnection, scheme: str | None = None) -> bool:
    """False for a browser request that another site sent (the CSRF check of unsafe methods).

    The `Origin` header (or, failing that, `Referer`) must name this server as the request's `Host` (with
    `scheme`, the request's own by default). Requests with neither come from non-browser clients, which
    cannot be tricked into sending a cookie, so they pass. `Sec-Fetch-Site: cross-site` is refused outright.
    """
    if conn.headers.get("sec-fetch-site") == "cross-site":
        return False
    host = conn.headers.get("host")
    if not host:
        return False
    expected = f"{scheme or conn.url.scheme}://{host}".lower()
    origin = conn.headers.get("origin")
    if origin is not None:
        return origin.lower() == expected
    referer = conn.headers.get("referer")
    if referer is not None:
        return _origin_of(referer) == expected
    return True


class SessionGuard:
    """What TaskAdmin checks on each request when auth is on: a session cookie or a bearer token, the
    origin of unsafe requests, and whether the principal may act."""

    def __init__(
        self,
        backend: TaskAuthBackend,
        sessions: Sessions,
        *,
        api_tokens: ApiTokens | None = None,
        read_only_users: Collection[str] = (),
        trust_proxy: bool = False,
    ) -> None:
        self.backend = backend
        self.sessions = sessions
        self.api_tokens = api_tokens or ApiTokens(None)
        self.read_only_users = frozenset(read_only_users)
        self.trust_proxy = trust_proxy

    def __repr__(self) -> str:
        return f"SessionGuard(backend={self.backend!r}, api_tokens={self.api_tokens!r})"

    def is_read_only(self, username: str) -> bool:
        """`read_only_users`, then the backend's own `is_read_only` (may block: call it in a thread)."""
        return username in self.read_only_users or bool(self.backend.is_read_only(username))

    async def principal(self, conn: HTTPConnection) -> Principal | None:
        """Who this request acts as (a bearer token or a live session), or None."""
        authorization = conn.headers.get("authorization")
        if authorization is not None and authorization[:7].lower() == "bearer ":
            return self.api_tokens.find(authorization)
        claims = await self.sessions.check(conn.cookies.get(COOKIE_NAME))
        if claims is None:
            return None
        return Principal(claims.user, "session", not claims.read_only)

    def cookie_options(self, conn: HTTPConnection) -> dict[str, Any]:
        """`set_cookie` keywords: HttpOnly, SameSite=Lax, Secure whenever the request came over https."""
        return {
            "key": COOKIE_NAME,
            "max_age": self.sessions.signer.expiry,
            "httponly": True,
            "samesite": "lax",
            "secure": request_scheme(conn, self.trust_proxy) == "https",
            "path": "/",
        }

    async def check(self, conn: HTTPConnection, method: str) -> tuple[int, str] | None:
        """None when the request may go on (its principal is then on `conn.state`), else the (status,
        detail) to refuse it with."""
        principal = await self.principal(conn)
        if principal is None:
            return 401, "Unauthorized"
        setattr(conn.state, PRINCIPAL_KEY, principal)
        if method in _UNSAFE_METHODS:
            # A bearer token is never sent by a browser on its own, so it needs no origin check.
            if principal.kind == "session" and not same_origin(conn, request_scheme(conn, self.trust_proxy)):
                return 403, "Cross-site request refused"
            if not principal.can_act:
                return 403, "Read-only access: this user or token cannot act"
        return None


@cache
def _login_template() -> Template:
    return Template(resources.files(__package__).joinpath("static/login.html").read_text(encoding="utf-8"))


def login_page(
    prefix: str,
    title: str,
    css_url: str,
    error: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The login form; every substituted value is HTML-escaped."""
    html = _login_template().substitute(
        title=escape(title), action=escape(f"{prefix}/auth/login"), css=escape(css_url),
        error=f'<p class="login-error" role="alert">{escape(error)}</p>' if error else "",
    )  # fmt: skip
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


SECURITY_HEADERS = {
    # No inline script or style anywhere, so injected markup could not run even if it reached the DOM.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
