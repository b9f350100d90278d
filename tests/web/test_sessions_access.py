"""Sessions and access: server-side logout, revoke-all, login throttling, Secure behind a proxy, bearer
tokens, read-only users, and the random-key warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi import FastAPI

from taskflow import TaskAdmin, TaskManager
from taskflow._exceptions import ConfigurationError
from taskflow.web import _sessions
from taskflow.web._sessions import several_workers, warn_random_key
from taskflow.web._throttle import LoginThrottle
from tests.web.test_auth import COOKIE_NAME, SECRET, client_for, cookie, login

READ = "r" * 24
WRITE = "w" * 24


def make_app(db: Path | None = None, **options: object) -> FastAPI:
    app = FastAPI()
    manager = TaskManager(snapshot_db=str(db)) if db is not None else TaskManager()
    options.setdefault("auth", [("admin", "pw"), ("viewer", "pw")])
    TaskAdmin(app, manager, secret_key=SECRET, **options)  # type: ignore[arg-type]
    return app


async def test_logout_revokes_the_session_on_the_server() -> None:
    """The cookie a session had is refused after logout, though still signed and unexpired."""
    async with client_for(make_app()) as client:
        token = (await login(client)).cookies[COOKIE_NAME]
        assert (await client.get("/tasks", headers=cookie(token))).status_code == 200
        assert (await client.post("/tasks/auth/logout", headers=cookie(token))).status_code == 302
        assert (await client.get("/tasks", headers=cookie(token))).status_code == 401
        assert (await client.get("/tasks/dashboard", headers=cookie(token))).status_code == 302
        fresh = (await login(client)).cookies[COOKIE_NAME]  # a new sign-in is a new session
        assert (await client.get("/tasks", headers=cookie(fresh))).status_code == 200


async def test_logout_holds_across_instances_and_restarts(tmp_path: Path) -> None:
    """With a shared SQLite store, a revoked session is refused by another instance and after a restart."""
    db = tmp_path / "tasks.db"
    async with client_for(make_app(db)) as first, client_for(make_app(db)) as second:
        token = (await login(first)).cookies[COOKIE_NAME]
        assert (await second.get("/tasks", headers=cookie(token))).status_code == 200
        await first.get("/tasks/auth/logout", headers=cookie(token))
        assert (await second.get("/tasks", headers=cookie(token))).status_code == 401
        other = (await login(second)).cookies[COOKIE_NAME]
    async with client_for(make_app(db)) as restarted:
        assert (await restarted.get("/tasks", headers=cookie(token))).status_code == 401
        assert (await restarted.get("/tasks", headers=cookie(other))).status_code == 200


async def test_revoke_all_voids_every_session_everywhere(tmp_path: Path) -> None:
    """POST auth/revoke-all signs everybody out on every instance; read-only users may not do it."""
    db = tmp_path / "tasks.db"
    async with client_for(make_app(db, read_only_users=["viewer"])) as a, client_for(make_app(db)) as b:
        admin = (await login(a)).cookies[COOKIE_NAME]
        viewer = (await login(a, username="viewer", password="pw")).cookies[COOKIE_NAME]
        refused = await a.post("/tasks/auth/revoke-all", headers=cookie(viewer))
        assert (refused.status_code, refused.json()["detail"][:9]) == (403, "Read-only")
        done = await a.post("/tasks/auth/revoke-all", headers=cookie(admin))
        assert done.status_code == 200
        assert done.json() == {"revoked": True, "session_version": 1}
        for token in (admin, viewer):
            assert (await b.get("/tasks", headers=cookie(token))).status_code == 401
        fresh = (await login(b)).cookies[COOKIE_NAME]
        assert (await a.get("/tasks", headers=cookie(fresh))).status_code == 200


async def test_revoke_all_sessions_from_python_without_a_store() -> None:
    """TaskAdmin.revoke_all_sessions() works in memory when there is no store."""
    app = FastAPI()
    admin = TaskAdmin(app, TaskManager(), auth=("admin", "pw"), secret_key=SECRET)
    async with client_for(app) as client:
        token = (await login(client)).cookies[COOKIE_NAME]
        assert await admin.revoke_all_sessions() == 1
        assert (await client.get("/tasks", headers=cookie(token))).status_code == 401
    with pytest.raises(ConfigurationError, match="auth"):
        await TaskAdmin(FastAPI(), TaskManager()).revoke_all_sessions()


async def test_wrong_passwords_are_throttled_with_retry_after() -> None:
    """A burst of wrong passwords: five 401s, then 429 with Retry-After, even for the right password."""
    async with client_for(make_app()) as client:
        statuses = []
        for _ in range(30):
            response = await login(client, username="admin", password="wrong")
            statuses.append(response.status_code)
        assert statuses[:6] == [401] * 5 + [429]  # the fifth failure locks
        # Each lock doubles, so however slow this machine, few attempts get through to the password check.
        assert statuses.count(401) <= 10
        throttled = await login(client)
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) >= 1
        assert "set-cookie" not in throttled.headers


def test_throttle_delays_grow_per_key_and_reset_on_success() -> None:
    """A key is locked at its `free`-th failure, twice as long at each next one up to the cap, per key;
    a success clears it."""
    now = [0.0]
    throttle = LoginThrottle(free=2, base=1.0, cap=8.0, clock=lambda: now[0])
    keys = ["client:1.2.3.4", "user:admin"]
    waits = []
    for _ in range(7):
        throttle.failed(keys)
        waits.append(throttle.retry_after(keys))
    assert waits == [0, 1, 2, 4, 8, 8, 8]
    assert throttle.retry_after(["client:5.6.7.8"]) == 0  # another client, another user: free
    assert throttle.retry_after(["client:5.6.7.8", "user:admin"]) == 8  # same user from elsewhere: locked
    now[0] = 8.5
    assert throttle.retry_after(keys) == 0
    throttle.succeeded(keys)
    throttle.failed(keys)  # counting starts again: one failure is free
    assert throttle.retry_after(keys) == 0


async def test_cookie_is_secure_behind_a_trusted_proxy_only() -> None:
    """X-Forwarded-Proto: https makes the cookie Secure only with trust_proxy_headers=True."""
    forwarded = {"x-forwarded-proto": "https", "origin": "https://testserver"}
    for trust, secure in ((False, False), (True, True)):
        async with client_for(make_app(trust_proxy_headers=trust)) as client:
            response = await client.post("/tasks/auth/login", data={"username": "admin", "password": "pw"},
                                         headers={"x-forwarded-proto": "https"})  # fmt: skip
            assert ("secure" in response.headers["set-cookie"].lower()) is secure
            token = response.cookies[COOKIE_NAME]
            # Behind the trusted proxy the browser's https Origin is this site's own origin.
            posted = await client.post("/tasks/x/retry", headers={**cookie(token), **forwarded})
            assert posted.status_code == (404 if trust else 403)


async def test_bearer_tokens_read_and_write_scopes() -> None:
    """A read token lists tasks but gets 403 on actions; a write token acts; a wrong one is a 401."""
    tokens = {"grafana": (READ, "read"), "deploy": (WRITE, "write")}
    async with client_for(make_app(api_tokens=tokens)) as client:
        read, write = {"authorization": f"Bearer {READ}"}, {"authorization": f"Bearer {WRITE}"}
        assert (await client.get("/tasks", headers=read)).status_code == 200
        assert (await client.get("/tasks/audit", headers=read)).status_code == 200
        for method, path in (("POST", "/tasks/x/retry"), ("POST", "/tasks/x/cancel"),
                             ("DELETE", "/tasks/history?value=1&unit=day")):  # fmt: skip
            refused = await client.request(method, path, headers=read)
            assert (path, refused.status_code) == (path, 403)
        # A write token is not a browser: no Origin check, and the request reaches the route.
        assert (
            await client.post("/tasks/x/retry", headers={**write, "origin": "http://evil"})
        ).status_code == 404
        deleted = await client.delete("/tasks/history?value=1&unit=day", headers=write)
        assert deleted.status_code == 200
        assert (
            await client.get("/tasks", headers={"authorization": "Bearer " + "x" * 24})
        ).status_code == 401
        entries = (await client.get("/tasks/audit", headers=read)).json()
        assert [(e["actor"], e["action"], e["outcome"]) for e in entries[:2]] == [
            ("deploy", "delete_history", "ok"),
            ("deploy", "retry", "404"),
        ]


async def test_read_only_users_see_but_cannot_act() -> None:
    """A read-only user gets the page (marked read-only) and data, and 403 on every action route."""
    async with client_for(make_app(read_only_users=["viewer"])) as client:
        viewer = (await login(client, username="viewer", password="pw")).cookies[COOKIE_NAME]
        admin = (await login(client)).cookies[COOKIE_NAME]
        page = await client.get("/tasks/dashboard", headers=cookie(viewer))
        assert 'data-can-act=""' in page.text
        assert 'data-can-act="1"' in (await client.get("/tasks/dashboard", headers=cookie(admin))).text
        assert (await client.get("/tasks/metrics", headers=cookie(viewer))).status_code == 200
        for method, path in (("POST", "/tasks/x/retry"), ("POST", "/tasks/x/cancel"),
                             ("DELETE", "/tasks/history?value=1&unit=day")):  # fmt: skip
            refused = await client.request(method, path, headers=cookie(viewer))
            assert (path, refused.status_code) == (path, 403)
            assert refused.json() == {"detail": "Read-only access: this user or token cannot act"}
        audit = (await client.get("/tasks/audit", headers=cookie(admin))).json()
        assert audit[0]["actor"] == "viewer" and audit[0]["outcome"] == "403"


def test_bad_access_options_are_configuration_errors() -> None:
    """Short, unscoped or duplicate bearer tokens, options without auth and a bad audit bound are refused."""
    bad = [
        {"api_tokens": {"a": ("short", "read")}},
        {"api_tokens": {"a": (READ, "admin")}},
        {"api_tokens": {"a": (READ, "read"), "b": (READ, "write")}},
        {"api_tokens": {"a": READ}},
        {"read_only_users": "viewer"},
        {"audit_max_entries": 0},
    ]
    for options in bad:
        with pytest.raises(ConfigurationError):
            make_app(**options)
    with pytest.raises(ConfigurationError, match="need auth"):
        TaskAdmin(FastAPI(), TaskManager(), api_tokens={"a": (READ, "read")})


def test_several_workers_are_detected_from_the_command_line() -> None:
    """uvicorn/gunicorn worker counts > 1 and WEB_CONCURRENCY mean several workers."""
    assert several_workers(["uvicorn", "app:app", "--workers", "4"], {})
    assert several_workers(["gunicorn", "-w", "2", "app:app"], {})
    assert several_workers(["gunicorn", "-w3", "app:app"], {})
    assert several_workers(["uvicorn", "app:app", "--workers=2"], {})
    assert several_workers(["gunicorn", "app:app"], {"GUNICORN_CMD_ARGS": "--workers 5"})
    assert several_workers(["anything"], {"WEB_CONCURRENCY": "3"})
    assert not several_workers(["uvicorn", "app:app", "--workers", "1"], {"WEB_CONCURRENCY": "1"})
    assert not several_workers(["uvicorn", "app:app", "--reload"], {})


def test_random_key_under_several_workers_warns_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Auth without secret_key under --workers 2 logs one warning that explains; a secret_key, none."""
    monkeypatch.setattr(_sessions, "_warned", False)
    monkeypatch.setattr("sys.argv", ["uvicorn", "app:app", "--workers", "2"])
    with caplog.at_level(logging.WARNING, logger="taskflow.web"):
        TaskAdmin(FastAPI(), TaskManager(), auth=("a", "b"), secret_key=SECRET)
        assert caplog.records == []
        for _ in range(3):
            TaskAdmin(FastAPI(), TaskManager(), auth=("a", "b"))
    assert len(caplog.records) == 1
    assert "secret_key" in caplog.records[0].getMessage()
    assert "several workers" in caplog.records[0].getMessage()
    assert not warn_random_key(["uvicorn", "--workers", "2"], {})  # already warned in this process
