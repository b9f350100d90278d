"""Sessions, login and CSRF: every route refused without a valid session, cookies, tokens, two workers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from fastapi.routing import APIRoute

from taskflow import TaskAdmin, TaskAuthBackend, TaskManager
from taskflow.web._auth import COOKIE_NAME, SimpleAuthBackend, resolve_auth
from taskflow.web._tokens import TokenSigner

SECRET = "s3cret-key-shared-by-workers"
LOGIN = {"username": "admin", "password": "pw"}


def make_app(
    *, secret_key: str | None = SECRET, auth: object = ("admin", "pw"), title: str = "taskflow"
) -> FastAPI:
    app = FastAPI()
    TaskAdmin(app, TaskManager(), auth=auth, secret_key=secret_key, title=title)
    return app


@asynccontextmanager
async def client_for(app: FastAPI, base_url: str = "http://testserver") -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


async def login(client: httpx.AsyncClient, **form: str) -> httpx.Response:
    return await client.post(
        "/tasks/auth/login", data=form or LOGIN, headers={"origin": str(client.base_url)}
    )


def cookie(token: str) -> dict[str, str]:
    return {"cookie": f"{COOKIE_NAME}={token}"}


def _walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    # FastAPI >= 0.16x keeps included routers as nodes; older versions copy their routes into the app.
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router"):
            yield from _walk(route.original_router.routes, prefix + route.include_context.prefix)


def guarded_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route TaskAdmin mounted, except the login/logout pages and static files."""
    routes = []
    for full_path, route in _walk(app.routes):
        if not full_path.startswith("/tasks") or full_path.startswith(
            ("/tasks/auth/", "/tasks/dashboard/static")
        ):
            continue
        path = full_path.replace("{task_id}", "0" * 8)
        routes.extend((method, path) for method in sorted(route.methods))
    return routes


async def test_every_route_is_refused_without_a_session() -> None:
    """JSON API and stream answer 401 {"detail": "Unauthorized"}; the dashboard redirects to the login."""
    app = make_app()
    routes = guarded_routes(app)
    assert ("GET", "/tasks/dashboard/stream") in routes
    assert ("POST", "/tasks/00000000/retry") in routes
    async with client_for(app) as client:
        for method, path in routes:
            response = await client.request(method, path)
            if path == "/tasks/dashboard":
                assert response.status_code == 302
                assert response.headers["location"] == "/tasks/auth/login"
            else:
                assert (method, path, response.status_code) == (method, path, 401)
                assert response.json() == {"detail": "Unauthorized"}


async def test_login_sets_a_hardened_cookie_and_opens_every_route() -> None:
    """The cookie is HttpOnly, SameSite=Lax, Max-Age=token_expiry, not Secure over plain http."""
    async with client_for(make_app()) as client:
        response = await login(client)
        assert response.status_code == 302
        assert response.headers["location"] == "/tasks/dashboard"
        set_cookie = response.headers["set-cookie"].lower()
        assert set_cookie.startswith(f"{COOKIE_NAME}=")
        assert "httponly" in set_cookie
        assert "samesite=lax" in set_cookie
        assert "max-age=86400" in set_cookie
        assert "secure" not in set_cookie
        token = response.cookies[COOKIE_NAME]
        for path in ("/tasks", "/tasks/metrics", "/tasks/supervision", "/tasks/dashboard"):
            assert (await client.get(path, headers=cookie(token))).status_code == 200


async def test_cookie_is_secure_over_https() -> None:
    """Served over https, the session cookie carries the Secure flag."""
    async with client_for(make_app(), base_url="https://testserver") as client:
        response = await login(client)
        assert response.status_code == 302
        assert "secure" in response.headers["set-cookie"].lower()


async def test_wrong_password_is_refused_without_a_cookie() -> None:
    """A wrong password gets the form again with a 401 and no cookie."""
    async with client_for(make_app()) as client:
        response = await login(client, username="admin", password="nope")
        assert response.status_code == 401
        assert "Invalid username or password." in response.text
        assert "set-cookie" not in response.headers


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def test_tampered_expired_and_foreign_tokens_are_refused() -> None:
    """Only an unexpired token signed with this key, in the current format, opens a route."""
    signer = TokenSigner(SECRET, 60)
    good = signer.issue("admin")
    body, sig = good.rsplit(".", 1)
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raised = _b64(json.dumps({**claims, "exp": 2**40, "sub": "root"}, separators=(",", ":")).encode())
    head_050 = _b64(b'{"alg":"HS256","typ":"JWT"}')
    body_050 = _b64(json.dumps({"exp": 2**40, "sub": "admin"}).encode())
    sig_050 = _b64(hmac.new(SECRET.encode(), f"{head_050}.{body_050}".encode(), hashlib.sha256).digest())
    bad_tokens = {
        "tampered payload": f"{raised}.{sig}",
        "tampered signature": f"{body}.{sig[:-2]}AA",
        "unsigned": f"{body}.",
        "no signature at all": body,
        "0.5.0 HS256 token with the same key": f"{head_050}.{body_050}.{sig_050}",
        "expired": signer.issue("admin", now=time.time() - 120),
        "foreign key": TokenSigner("another-key", 60).issue("admin"),
        "garbage": "not-a-token",
        "empty": "",
        "too long": good + "A" * 5000,
    }
    async with client_for(make_app()) as client:
        assert (await client.get("/tasks", headers=cookie(good))).status_code == 200
        for name, token in bad_tokens.items():
            response = await client.get("/tasks/dashboard/stream", headers=cookie(token))
            assert (name, response.status_code) == (name, 401)


async def test_cross_site_posts_are_refused() -> None:
    """An unsafe request with a valid cookie but another Origin, Referer or Sec-Fetch-Site is a 403."""
    token = TokenSigner(SECRET, 60).issue("admin")
    async with client_for(make_app()) as client:
        for headers in (
            {"origin": "http://evil.example"},
            {"referer": "http://evil.example/page"},
            {"sec-fetch-site": "cross-site"},
            {"origin": "https://testserver"},  # other scheme: another origin
        ):
            response = await client.post("/tasks/x/retry", headers={**cookie(token), **headers})
            assert response.status_code == 403
            assert response.json() == {"detail": "Cross-site request refused"}
            deleted = await client.delete(
                "/tasks/history?value=1&unit=day", headers={**cookie(token), **headers}
            )
            assert deleted.status_code == 403
        same = await client.post("/tasks/x/retry", headers={**cookie(token), "origin": "http://testserver"})
        assert same.status_code == 404  # through the guard, to the route
        scripted = await client.post("/tasks/x/retry", headers=cookie(token))  # curl: no Origin, no Referer
        assert scripted.status_code == 404
        cross_login = await client.post(
            "/tasks/auth/login", data=LOGIN, headers={"origin": "http://evil.example"}
        )
        assert cross_login.status_code == 403
        assert "set-cookie" not in cross_login.headers


async def test_sessions_are_valid_across_workers_sharing_a_secret_key() -> None:
    """Two TaskAdmins (two workers) with one secret_key accept each other's sessions; other keys do not."""
    async with client_for(make_app()) as first, client_for(make_app()) as second:
        token = (await login(first)).cookies[COOKIE_NAME]
        assert (await second.get("/tasks", headers=cookie(token))).status_code == 200
    async with client_for(make_app(secret_key=None)) as random_key:
        assert (await random_key.get("/tasks", headers=cookie(token))).status_code == 401


async def test_logout_clears_the_cookie() -> None:
    """GET and POST logout redirect to the login page and expire the cookie."""
    async with client_for(make_app()) as client:
        for method in ("GET", "POST"):
            response = await client.request(method, "/tasks/auth/logout")
            assert response.status_code == 302
            assert response.headers["location"] == "/tasks/auth/login"
            assert 'taskflow_token=""' in response.headers["set-cookie"]
            assert "max-age=0" in response.headers["set-cookie"].lower()


async def test_login_page_escapes_the_title_and_forbids_inline_script() -> None:
    """The title is HTML-escaped and the page is served with a no-inline-script CSP."""
    async with client_for(make_app(title='<script>alert(1)</script>"')) as client:
        response = await client.get("/tasks/auth/login")
        assert response.status_code == 200
        assert "<script>alert(1)" not in response.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;" in response.text
        assert "script-src 'self'" in response.headers["content-security-policy"]


async def test_custom_backend_runs_in_a_worker_thread() -> None:
    """A TaskAuthBackend decides who signs in, off the event loop thread."""
    loop_thread = threading.get_ident()
    seen: list[int] = []

    class Backend(TaskAuthBackend):
        def authenticate_user(self, username: str, password: str) -> bool:
            seen.append(threading.get_ident())
            return (username, password) == ("ops", "hunter2")

    async with client_for(make_app(auth=Backend())) as client:
        assert (await login(client, username="ops", password="hunter2")).status_code == 302
        assert (await login(client, username="admin", password="pw")).status_code == 401
    assert seen
    assert loop_thread not in seen


def test_auth_argument_shapes() -> None:
    """A tuple, a list of tuples or a backend are accepted; anything else is a TypeError (as in 0.5.0)."""
    assert resolve_auth(None) is None
    assert resolve_auth(("a", "b")).authenticate_user("a", "b")  # type: ignore[union-attr]
    many = resolve_auth([("a", "1"), ("b", "2")])
    assert many is not None
    assert many.authenticate_user("b", "2")
    assert not many.authenticate_user("a", "2")
    for bad in ("admin:pw", ("a",), ("a", "b", "c"), [], [("a", 1)], {"a": "b"}):
        with pytest.raises(TypeError):
            resolve_auth(bad)
    with pytest.raises(TypeError):
        TaskAdmin(FastAPI(), TaskManager(), auth="admin:pw")


def test_secrets_are_masked_in_reprs() -> None:
    """Neither the signing key nor passwords show in reprs."""
    assert SECRET not in repr(TokenSigner(SECRET, 60))
    assert "pw" not in repr(SimpleAuthBackend([("admin", "pw")])).replace("passwords", "")
