"""Dashboard and API authentication: user backends, signed session tokens, the session guard, login routes.

The surface is fastapi-taskflow 0.5.0's (`TaskAdmin(auth=..., secret_key=..., token_expiry=...)`,
`TaskAuthBackend`, cookie `taskflow_token`, `{p}/auth/login` and `{p}/auth/logout`); what is new is that the
guard covers every route (the SSE stream included), the cookie is `Secure` over https, unsafe requests must
come from the dashboard's own origin, and the token check refuses anything but an unexpired HS256 token
signed with this key.

Tokens keep the 0.5.0 format: `b64url(header).b64url(payload).b64url(HMAC-SHA256(key, header.payload))`
with header `{"alg":"HS256","typ":"JWT"}` and payload `{"exp": <unix time>, "sub": <user>}`, so sessions
signed by one worker are valid on every worker given the same `secret_key`.
"""

from __future__ import annotations

import abc
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from functools import cache
from html import escape
from importlib import resources
from string import Template
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.requests import HTTPConnection

COOKIE_NAME = "taskflow_token"
_HEADER = {"alg": "HS256", "typ": "JWT"}
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_TOKEN_LENGTH = 4096
MAX_LOGIN_BODY = 8192


class TaskAuthBackend(abc.ABC):
    """Decides who may use the dashboard and API. Subclass it to check users against your own system."""

    @abc.abstractmethod
    def authenticate_user(self, username: str, password: str) -> bool:
        """True when `password` is right for `username` (called in a worker thread: it may block)."""


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


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Makes and checks session tokens with one HMAC key."""

    def __init__(self, secret_key: str | bytes | None, expiry: int) -> None:
        if isinstance(expiry, bool) or not isinstance(expiry, int) or expiry < 1:
            raise ValueError(f"token_expiry must be a positive number of seconds, got {expiry!r}")
        if secret_key is None:
            # A key per process: sessions end on restart and are not shared between workers (docs say so).
            secret_key = secrets.token_hex(32)
        self._key = secret_key.encode() if isinstance(secret_key, str) else bytes(secret_key)
        if not self._key:
            raise ValueError("secret_key must not be empty")
        self.expiry = expiry

    def __repr__(self) -> str:
        return f"TokenSigner(secret_key=***, expiry={self.expiry})"

    def _sign(self, signing_input: str) -> str:
        return _b64encode(hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest())

    def issue(self, username: str, *, now: float | None = None) -> str:
        """A token for `username`, valid for `expiry` seconds."""
        exp = int((time.time() if now is None else now) + self.expiry)
        head = _b64encode(json.dumps(_HEADER, separators=(",", ":")).encode())
        body = _b64encode(json.dumps({"exp": exp, "sub": username}, separators=(",", ":")).encode())
        return f"{head}.{body}.{self._sign(f'{head}.{body}')}"

    def verify(self, token: str | None, *, now: float | None = None) -> str | None:
        """The user a valid token names; None when it is missing, malformed, tampered, foreign or expired."""
        if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            return None
        head, body, signature = token.split(".")
        if not hmac.compare_digest(signature.encode(), self._sign(f"{head}.{body}").encode()):
            return None
        try:
            header = json.loads(_b64decode(head))
            payload = json.loads(_b64decode(body))
        except ValueError:  # bad base64, bad UTF-8 and bad JSON are all ValueErrors
            return None
        # The signature is ours, but check the algorithm anyway: never accept a token that says "none".
        if header != _HEADER or not isinstance(payload, dict):
            return None
        exp, sub = payload.get("exp"), payload.get("sub", "")
        if isinstance(exp, bool) or not isinstance(exp, int) or not isinstance(sub, str):
            return None
        if exp <= (time.time() if now is None else now):
            return None
        return sub


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(conn: HTTPConnection) -> bool:
    """False for a browser request that another site sent (the CSRF check of unsafe methods).

    The `Origin` header (or, failing that, `Referer`) must name this server as the request's `Host`.
    Requests with neither come from non-browser clients, which cannot be tricked into sending a cookie,
    so they pass. `Sec-Fetch-Site: cross-site` is refused outright.
    """
    if conn.headers.get("sec-fetch-site") == "cross-site":
        return False
    host = conn.headers.get("host")
    if not host:
        return False
    expected = f"{conn.url.scheme}://{host}".lower()
    origin = conn.headers.get("origin")
    if origin is not None:
        return origin.lower() == expected
    referer = conn.headers.get("referer")
    if referer is not None:
        return _origin_of(referer) == expected
    return True


class SessionGuard:
    """What TaskAdmin checks on each request when auth is on."""

    def __init__(self, backend: TaskAuthBackend, signer: TokenSigner) -> None:
        self.backend = backend
        self.signer = signer

    def user(self, conn: HTTPConnection) -> str | None:
        """The signed-in user of this request, or None."""
        return self.signer.verify(conn.cookies.get(COOKIE_NAME))

    def cookie_options(self, conn: HTTPConnection) -> dict[str, Any]:
        """`set_cookie` keywords: HttpOnly, SameSite=Lax, Secure whenever the request came over https."""
        return {
            "key": COOKIE_NAME,
            "max_age": self.signer.expiry,
            "httponly": True,
            "samesite": "lax",
            "secure": conn.url.scheme == "https",
            "path": "/",
        }

    def check(self, conn: HTTPConnection, method: str) -> tuple[int, str] | None:
        """None when the request may go on, else the (status, detail) to refuse it with."""
        if self.user(conn) is None:
            return 401, "Unauthorized"
        if method in _UNSAFE_METHODS and not same_origin(conn):
            return 403, "Cross-site request refused"
        return None


@cache
def _login_template() -> Template:
    return Template(resources.files(__package__).joinpath("static/login.html").read_text(encoding="utf-8"))


def login_page(prefix: str, title: str, css_url: str, error: str = "", status: int = 200) -> HTMLResponse:
    """The login form; every substituted value is HTML-escaped."""
    html = _login_template().substitute(
        title=escape(title), action=escape(f"{prefix}/auth/login"), css=escape(css_url),
        error=f'<p class="login-error" role="alert">{escape(error)}</p>' if error else "",
    )  # fmt: skip
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


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


async def _read_form(request: Request) -> dict[str, str]:
    # Parsed here rather than with FastAPI's Form(), which would need python-multipart for two fields.
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LOGIN_BODY:
            return {}
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    return {k: v[0] for k, v in fields.items() if v}


def build_auth_router(guard: SessionGuard, *, prefix: str, title: str, css_url: str) -> APIRouter:
    """`GET/POST {p}/auth/login` and `GET/POST {p}/auth/logout` (0.5.0's routes; POST logout is new)."""
    router = APIRouter(include_in_schema=False)
    dashboard, login = f"{prefix}/dashboard", f"{prefix}/auth/login"

    @router.get("/auth/login")
    async def login_form(request: Request) -> Response:
        if guard.user(request) is not None:
            return RedirectResponse(dashboard, status_code=302)
        return login_page(prefix, title, css_url)

    @router.post("/auth/login")
    async def login_submit(request: Request) -> Response:
        if not same_origin(request):
            return login_page(prefix, title, css_url, "Cross-site sign-in refused.", 403)
        form = await _read_form(request)
        username, password = form.get("username", ""), form.get("password", "")
        # The backend may query a database or a directory: keep it off the event loop.
        check = guard.backend.authenticate_user
        ok = bool(username) and await anyio.to_thread.run_sync(check, username, password)
        if not ok:
            return login_page(prefix, title, css_url, "Invalid username or password.", 401)
        response = RedirectResponse(dashboard, status_code=302)
        response.set_cookie(value=guard.signer.issue(username), **guard.cookie_options(request))
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse(login, status_code=302)
        options = guard.cookie_options(request)
        response.delete_cookie(COOKIE_NAME, path="/", secure=options["secure"], httponly=True, samesite="lax")
        return response

    router.add_api_route("/auth/logout", logout, methods=["GET", "POST"])
    return router
