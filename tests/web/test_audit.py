"""The audit log: what each action records, `GET {p}/audit` (pages, CSV, bad input, read-only), and where
it is kept (the store, or memory for a store without the capability)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from fastapi import FastAPI

from taskflow import TaskAdmin, TaskManager
from taskflow.stores import AuditStore, MemoryStore
from taskflow.web._audit import _ENTRY_ID, _entry_id
from tests.web.test_auth import COOKIE_NAME, SECRET, client_for, cookie, login


def make_app(db: Path | None = None, **options: object) -> FastAPI:
    app = FastAPI()
    manager = TaskManager(snapshot_db=str(db)) if db is not None else TaskManager()

    @manager.task()
    def job() -> None:
        raise RuntimeError("fails")

    options.setdefault("auth", ("admin", "pw"))
    TaskAdmin(app, manager, secret_key=SECRET, **options)  # type: ignore[arg-type]
    return app


async def test_sign_ins_and_actions_are_recorded_with_who_when_where_what() -> None:
    """login, failed login, retry, cancel, history deletion and logout each leave an entry."""
    async with client_for(make_app()) as client:
        await login(client, username="admin", password="bad")
        token = (await login(client)).cookies[COOKIE_NAME]
        headers = cookie(token)
        assert (await client.post("/tasks/nope/retry", headers=headers)).status_code == 404
        assert (await client.post("/tasks/nope/cancel", headers=headers)).status_code == 404
        assert (await client.delete("/tasks/history?value=2&unit=hour", headers=headers)).status_code == 200
        await client.post("/tasks/auth/logout", headers=headers)
        token = (await login(client)).cookies[COOKIE_NAME]
        entries = (await client.get("/tasks/audit", headers=cookie(token))).json()
    seen = [(e["actor"], e["action"], e["target"], e["outcome"]) for e in reversed(entries)]
    assert seen == [
        ("admin", "login_failed", None, "401"),
        ("admin", "login", None, "ok"),
        ("admin", "retry", "nope", "404"),
        ("admin", "cancel", "nope", "404"),
        ("admin", "delete_history", "older than 2 hours", "ok"),
        ("admin", "logout", None, "ok"),
        ("admin", "login", None, "ok"),
    ]
    assert all(e["client"] == "127.0.0.1" and e["at"].endswith("+00:00") for e in entries)
    deletion = next(e for e in entries if e["action"] == "delete_history")
    assert deletion["detail"] == "deleted 0 finished tasks"  # words, not the JSON body's dict


async def test_forwarded_for_is_honoured_only_when_trusted() -> None:
    """The client address comes from X-Forwarded-For (last hop) only with trust_proxy_headers=True."""
    spoof = {"x-forwarded-for": "6.6.6.6, 203.0.113.7"}
    for trust, expected in ((False, "127.0.0.1"), (True, "203.0.113.7")):
        async with client_for(make_app(trust_proxy_headers=trust)) as client:
            token = (await login(client)).cookies[COOKIE_NAME]
            await client.post("/tasks/x/cancel", headers={**cookie(token), **spoof})
            entries = (await client.get("/tasks/audit", headers=cookie(token))).json()
            assert (entries[0]["action"], entries[0]["client"]) == ("cancel", expected)


async def test_audit_pages_with_a_cursor_and_exports_csv() -> None:
    """limit/cursor page newest first (X-Next-Cursor); format=csv exports every entry, formulas defused."""
    async with client_for(make_app(auth=None)) as client:
        for n in range(7):
            await client.post(f"/tasks/=HYPERLINK{n}/retry")
        first = await client.get("/tasks/audit?limit=3")
        second = await client.get(f"/tasks/audit?limit=3&cursor={first.headers['x-next-cursor']}")
        third = await client.get(f"/tasks/audit?limit=3&cursor={second.headers['x-next-cursor']}")
        ids = [e["target"] for page in (first, second, third) for e in page.json()]
        assert ids == [f"=HYPERLINK{n}" for n in range(6, -1, -1)]
        assert "x-next-cursor" not in third.headers
        assert all(e["actor"] == "anonymous" for e in first.json())
        exported = await client.get("/tasks/audit?format=csv")
        assert exported.headers["content-type"].startswith("text/csv")
        assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0] == ["entry_id", "at", "actor", "client", "action", "target", "outcome", "detail"]
    assert [r[5] for r in rows[1:]] == [f"'=HYPERLINK{n}" for n in range(6, -1, -1)]


async def test_bad_input_to_the_audit_route_is_a_4xx_json_error() -> None:
    """A bad cursor, format or limit gets a 4xx with a JSON detail."""
    async with client_for(make_app(auth=None)) as client:
        for query, status in (("cursor=nope", 400), ("cursor=" + "a" * 65, 422), ("format=xml", 400),
                              ("limit=0", 422), ("limit=1001", 422), ("limit=x", 422)):  # fmt: skip
            response = await client.get(f"/tasks/audit?{query}")
            assert (query, response.status_code) == (query, status)
            assert "detail" in response.json()


async def test_the_audit_log_cannot_be_written_over_http() -> None:
    """PUT, PATCH, POST and DELETE on the audit route answer 405, signed in or not; nothing changes."""
    async with client_for(make_app()) as client:
        token = (await login(client)).cookies[COOKIE_NAME]
        before = (await client.get("/tasks/audit", headers=cookie(token))).json()
        for method in ("PUT", "PATCH", "POST", "DELETE"):
            for headers in (cookie(token), {}):
                response = await client.request(method, "/tasks/audit", headers=headers, json=[])
                assert (method, response.status_code) == (method, 405)
        assert (await client.get("/tasks/audit", headers=cookie(token))).json() == before


async def test_the_audit_log_survives_restarts_and_is_shared(tmp_path: Path) -> None:
    """With a SQLite store, another instance and a restarted one read the same entries."""
    db = tmp_path / "tasks.db"
    async with client_for(make_app(db, auth=None)) as first, client_for(make_app(db, auth=None)) as second:
        await first.post("/tasks/abc/cancel")
        assert [e["target"] for e in (await second.get("/tasks/audit")).json()] == ["abc"]
    async with client_for(make_app(db, auth=None)) as restarted:
        assert [e["target"] for e in (await restarted.get("/tasks/audit")).json()] == ["abc"]


async def test_retention_bounds_the_log(tmp_path: Path) -> None:
    """audit_max_entries keeps only the newest entries in the store."""
    async with client_for(make_app(tmp_path / "t.db", auth=None, audit_max_entries=3)) as client:
        for n in range(5):
            await client.post(f"/tasks/t{n}/cancel")
        assert [e["target"] for e in (await client.get("/tasks/audit")).json()] == ["t4", "t3", "t2"]


class PlainStore(MemoryStore):
    """A custom store without the audit capability (its audit methods hidden)."""

    append_audit = None  # type: ignore[assignment]
    audit_page = None  # type: ignore[assignment]


async def test_a_store_without_the_capability_keeps_the_log_in_memory() -> None:
    """A custom store without AuditStore still gets an audit log (in memory), and nothing breaks."""
    store = PlainStore()
    assert not isinstance(store, AuditStore)
    app = FastAPI()
    TaskAdmin(app, TaskManager(snapshot_backend=store))
    async with client_for(app) as client:
        await client.post("/tasks/abc/cancel")
        assert [e["target"] for e in (await client.get("/tasks/audit")).json()] == ["abc"]


def test_entry_ids_sort_in_the_order_they_were_made() -> None:
    """Ids made within one millisecond still sort in order, and keep the UUID text form the cursor takes."""
    ids = [_entry_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(_ENTRY_ID.match(i) and i[14] == "7" for i in ids)
