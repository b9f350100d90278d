"""Two instances ("hosts") sharing one Redis store: they share the audit log, and a sign-out or a revoke-all
on one is refused on the other (and after a restart), through the HTTP layer."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from taskflow import TaskAdmin, TaskManager
from taskflow.stores import RedisStore
from tests.redis_service import REDIS_URL, redis_prefix
from tests.web.test_auth import COOKIE_NAME, SECRET, client_for, cookie, login

pytestmark = [pytest.mark.anyio, pytest.mark.services]


def host(prefix: str) -> FastAPI:
    """One instance with auth, its own RedisStore (own client and pool) on the shared prefix."""
    app = FastAPI()
    manager = TaskManager(snapshot_backend=RedisStore(REDIS_URL, prefix=prefix))
    TaskAdmin(app, manager, auth=[("admin", "pw"), ("ops", "pw")], secret_key=SECRET)
    return app


async def test_audit_log_is_shared_and_survives_a_restart(anyio_backend: str) -> None:
    """Actions taken on A are in B's audit log, newest first, and in a restarted instance's."""
    with redis_prefix() as prefix:
        async with client_for(host(prefix)) as a, client_for(host(prefix)) as b:
            token = (await login(a)).cookies[COOKIE_NAME]
            await a.post("/tasks/nope/cancel", headers=cookie(token))
            await login(b, username="ops", password="wrong")
            seen = (await b.get("/tasks/audit", headers=cookie(token))).json()
            assert [(e["actor"], e["action"], e["target"]) for e in seen] == [
                ("ops", "login_failed", None),
                ("admin", "cancel", "nope"),
                ("admin", "login", None),
            ]
            page = await a.get("/tasks/audit?limit=2", headers=cookie(token))
            rest = await a.get(f"/tasks/audit?cursor={page.headers['x-next-cursor']}", headers=cookie(token))
            assert [e["entry_id"] for e in page.json() + rest.json()] == [e["entry_id"] for e in seen]
        async with client_for(host(prefix)) as restarted:
            token = (await login(restarted)).cookies[COOKIE_NAME]
            after = (await restarted.get("/tasks/audit", headers=cookie(token))).json()
            assert [e["action"] for e in after] == ["login", "login_failed", "cancel", "login"]


async def test_logout_and_revoke_all_on_one_host_hold_on_the_other(anyio_backend: str) -> None:
    """A's sign-out makes B refuse that cookie; B's revoke-all makes A refuse every earlier cookie."""
    with redis_prefix() as prefix:
        async with client_for(host(prefix)) as a, client_for(host(prefix)) as b:
            token = (await login(a)).cookies[COOKIE_NAME]
            kept = (await login(a, username="ops", password="pw")).cookies[COOKIE_NAME]
            assert (await b.get("/tasks", headers=cookie(token))).status_code == 200
            assert (await a.post("/tasks/auth/logout", headers=cookie(token))).status_code == 302
            assert (await b.get("/tasks", headers=cookie(token))).status_code == 401  # replay refused
            assert (await b.get("/tasks", headers=cookie(kept))).status_code == 200  # other sessions live
            done = await b.post("/tasks/auth/revoke-all", headers=cookie(kept))
            assert done.json() == {"revoked": True, "session_version": 1}
            assert (await a.get("/tasks", headers=cookie(kept))).status_code == 401
            fresh = (await login(b)).cookies[COOKIE_NAME]
            assert (await a.get("/tasks", headers=cookie(fresh))).status_code == 200
        async with client_for(host(prefix)) as restarted:
            assert (await restarted.get("/tasks", headers=cookie(token))).status_code == 401
            assert (await restarted.get("/tasks", headers=cookie(fresh))).status_code == 200
