"""Workload 3, persisted tasks on SQLite: tasks/s with `persist=True`, and whether each is durable in time.

Two passes over a `TaskManager(snapshot_db=...)` app with `@task(persist=True)`:

1. a probe: an ASGI wrapper catches the moment the app sends each response's last body chunk and, right
   then, reads the database through its own sqlite3 connection to see whether every task id in that
   response is already committed (durable before the response, the guarantee taskflow promises);
2. the timed pass: R requests x N tasks, until every task has run and settled, sent by one client after
   another (`--clients 1`) or by C concurrent clients sharing the R requests (`--clients 16`).

Whether the system persists at all is detected, not assumed: when no task id ever reaches the database
(not even after shutdown), the system has no persistence and the throughput figure is withheld.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from _harness import client_for, emit, parser, wait_until
from _sut import MANAGED, Progress, build

UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
progress = Progress()


async def persisted(i: int) -> None:
    progress.done += 1


def ids_in_db(path: Path) -> set[str]:
    """Every UUID-shaped string in any committed cell of any table (schema-agnostic on purpose)."""
    if not path.exists():
        return set()
    found: set[str] = set()
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return found
    try:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for cell in row:
                    if isinstance(cell, str):
                        cell = cell.encode()
                    if isinstance(cell, bytes):
                        found.update(m.decode() for m in UUID.findall(cell))
    except sqlite3.Error:
        pass  # a database being created under us: count what was readable
    finally:
        conn.close()
    return found


class DurabilityProbe:
    """ASGI wrapper: when a response's body is sent, check that the ids it carries are in the database."""

    def __init__(self, app: Any, db: Path) -> None:
        self.app = app
        self.db = db
        self.checked = 0
        self.durable = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/add/"):
            await self.app(scope, receive, send)
            return
        body = bytearray()

        async def checking_send(message: Any) -> None:
            if message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if not message.get("more_body"):
                    ids = json.loads(body).get("ids") or []
                    present = ids_in_db(self.db)  # blocking on purpose: the response waits for the check
                    self.checked += len(ids)
                    self.durable += sum(task_id in present for task_id in ids)
            await send(message)

        await self.app(scope, receive, checking_send)


def _manager_kwargs(args: argparse.Namespace, db: Path) -> dict[str, Any] | None:
    if args.system not in MANAGED:
        return None
    if args.synchronous == "FULL":
        return {"snapshot_db": str(db)}  # what a user writes: the default store, synchronous=FULL
    from taskflow.backends import SqliteBackend  # taskflow only: the opt-in is its own

    return {"snapshot_backend": SqliteBackend(str(db), synchronous=args.synchronous)}


async def one_pass(
    args: argparse.Namespace, db: Path, requests: int, per_request: int, probe: bool, clients: int = 1
) -> dict[str, Any]:
    sut = build(
        args.system,
        {"persisted": persisted},
        manager_kwargs=_manager_kwargs(args, db),
        task_kwargs={"persist": True},
        keep_ids=True,
    )
    wrapper = DurabilityProbe(sut.app, db) if probe else None
    base = progress.done
    async with client_for(sut, app=wrapper) as client:
        numbers = iter(range(requests))  # each client takes the next request number until none is left

        async def send_requests() -> None:
            for r in numbers:
                response = await client.get(
                    "/add/persisted", params={"n": per_request, "start": r * per_request}
                )
                if response.status_code != 200:
                    raise RuntimeError(
                        f"/add/persisted answered {response.status_code}: {response.text[:300]}"
                    )

        t0 = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(clients):
                tg.start_soon(send_requests)
        done = await wait_until(lambda: progress.done - base >= sut.accepted, 60)
        done = done and await wait_until(sut.settled, 30, poll=0.001)
        elapsed = time.perf_counter() - t0
        statuses = sut.statuses()
    out = {
        "elapsed": elapsed,
        "ids": list(sut.ids),
        "done": done,
        "statuses": statuses,
        "accepted": sut.accepted,
    }
    if wrapper is not None:
        out["checked"], out["durable"] = wrapper.checked, wrapper.durable
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    requests, per_request = (4, 5) if args.tiny else (args.requests, args.tasks)
    with tempfile.TemporaryDirectory(prefix="bench-w3-") as tmp:
        probe = await one_pass(args, Path(tmp) / "probe.db", 5, 4, probe=True)
        timed = await one_pass(
            args, Path(tmp) / "timed.db", requests, per_request, probe=False, clients=args.clients
        )
        stored = ids_in_db(Path(tmp) / "timed.db") | ids_in_db(Path(tmp) / "probe.db")
    managed = args.system in MANAGED
    all_ids = probe["ids"] + timed["ids"]
    persisted_after = sum(i in stored for i in all_ids)
    available = managed and persisted_after > 0
    tasks = requests * per_request
    ok = timed["done"] and (not managed or timed["statuses"].get("success") == tasks)
    result: dict[str, Any] = {
        "available": available or not managed,
        "metrics": {
            "tasks_per_s": tasks / timed["elapsed"] if available or not managed else None,
            "durable_before_response": (probe["durable"] / probe["checked"])
            if available and probe["checked"]
            else None,
            "persisted_after_shutdown": persisted_after / len(all_ids) if managed and all_ids else None,
        },
        "checks": {"ok": ok, "statuses": timed["statuses"], "accepted": timed["accepted"]},
        "counts": {
            "requests": requests,
            "tasks_per_request": per_request,
            "clients": args.clients,
            "synchronous": args.synchronous,
        },
    }
    if managed and not available:
        result["reason"] = (
            f"TaskManager(snapshot_db=...) with @task(persist=True) wrote none of {len(all_ids)} task ids to "
            "the SQLite file, not even after shutdown: this version has no SQLite persistence yet"
        )
    return result


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=100)
    p.add_argument("--tasks", type=int, default=20)
    p.add_argument("--clients", type=int, default=1, help="concurrent clients sharing the requests")
    p.add_argument(
        "--synchronous",
        choices=("FULL", "NORMAL"),
        default="FULL",
        help="taskflow only: SQLite's synchronous level (FULL is the default; NORMAL the opt-in)",
    )
    args = p.parse_args()
    emit(args, anyio.run(run, args))


if __name__ == "__main__":
    main()
