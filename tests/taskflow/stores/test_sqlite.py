"""SqliteStore beyond the contract: schema versions and migrations, pragmas, indexes, lock contention."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import anyio
import pytest

from taskflow._models import TaskRecord, TaskStatus, new_task_id
from taskflow.stores import AuditEntry, SqliteStore, _sqlite_ops, _sqlite_schema
from taskflow.stores._sqlite import _listing_sql

# The v1 schema exactly as released, frozen here: a migration that changed it would fail this file.
V1_DDL = """
CREATE TABLE taskflow_tasks (
    task_id TEXT PRIMARY KEY, func_name TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL,
    start_time TEXT, end_time TEXT, retries_used INTEGER NOT NULL DEFAULT 0, error TEXT, stacktrace TEXT,
    status_reason TEXT, logs TEXT NOT NULL DEFAULT '[]', tags TEXT NOT NULL DEFAULT '{}',
    attempts TEXT NOT NULL DEFAULT '[]', idempotency_key TEXT, call TEXT NOT NULL, encrypted_payload BLOB,
    owner TEXT NOT NULL, requeue INTEGER NOT NULL DEFAULT 0);
CREATE INDEX taskflow_tasks_created ON taskflow_tasks (created_at, task_id);
CREATE INDEX taskflow_tasks_status ON taskflow_tasks (status, created_at, task_id);
CREATE INDEX taskflow_tasks_func ON taskflow_tasks (func_name, created_at, task_id);
CREATE INDEX taskflow_tasks_end ON taskflow_tasks (end_time) WHERE end_time IS NOT NULL;
CREATE TABLE taskflow_tags (task_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (task_id, key)) WITHOUT ROWID;
CREATE INDEX taskflow_tags_kv ON taskflow_tags (key, value);
CREATE TABLE taskflow_idempotency (key TEXT PRIMARY KEY, task_id TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE taskflow_instances (instance_id TEXT PRIMARY KEY, alive_until REAL NOT NULL) WITHOUT ROWID;
INSERT INTO taskflow_tasks (task_id, func_name, status, created_at, end_time, logs, tags, call, owner)
VALUES ('old-1', 'send', 'success', '2024-05-01T12:00:00.000000+00:00', '2024-05-01T12:00:01.000000+00:00',
        '["hi"]', '{"team":"a"}', '{"tf":1,"a":[1,{"__tf__":"tuple","v":[2]}],"k":{}}', 'gone');
INSERT INTO taskflow_tags VALUES ('old-1', 'team', 'a');
PRAGMA user_version = 1;
"""

# What v2 added, as released.
V2_DDL = """
ALTER TABLE taskflow_tasks ADD COLUMN trace_context TEXT;
UPDATE taskflow_tasks SET trace_context = 'tp';
PRAGMA user_version = 2;
"""


def _raw(path: Path, script: str) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(script)
    finally:
        conn.close()


def _user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


async def test_opens_a_v1_file_written_with_raw_sql(tmp_path: Path) -> None:
    """A file at schema v1 opens with the current code and its records read back whole."""
    path = tmp_path / "v1.db"
    _raw(path, V1_DDL)
    store = SqliteStore(path)
    await store.open()
    try:
        record = await store.get("old-1")
        assert record is not None
        assert (record.status, record.args, record.logs) == (TaskStatus.SUCCESS, (1, (2,)), ["hi"])
        assert record.tags == {"team": "a"}
        assert [r.task_id for r in (await store.query(tag=("team", "a"))).records] == ["old-1"]
        assert record.trace_context is None  # a v1 row has none: the v2 column is added empty
        record.trace_context = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
        await store.write([record], owner="me")
        again = await store.get("old-1")
        assert again is not None and again.trace_context == record.trace_context
    finally:
        await store.close()
    assert _user_version(path) == _sqlite_schema.schema_version()


async def test_a_v1_file_gains_the_audit_and_session_tables(tmp_path: Path) -> None:
    """An existing v1 file is migrated to hold the audit log and revoked sessions, its records untouched."""
    path = tmp_path / "v1.db"
    _raw(path, V1_DDL)
    store = SqliteStore(path)
    await store.open()
    try:
        entry = AuditEntry(new_task_id(), datetime.now(UTC), "ops", "10.0.0.9", "cancel", "t1", "ok")
        await store.append_audit([entry], keep=10)
        await store.revoke_session("sid", expires=time.time() + 60)
        assert await store.audit_page(limit=5) == [entry]
        assert (await store.session_status("sid")).revoked
        assert await store.get("old-1") is not None
    finally:
        await store.close()
    assert _user_version(path) >= 2


async def test_opens_a_v2_file_and_adds_the_checkpoint_column(tmp_path: Path) -> None:
    """A file at schema v2 (trace_context, no checkpoint) migrates to the latest version; its rows read
    back without a checkpoint and keep one once written."""
    path = tmp_path / "v2.db"
    _raw(path, V1_DDL + V2_DDL)
    assert _user_version(path) == 2
    store = SqliteStore(path)
    await store.open()
    try:
        record = await store.get("old-1")
        assert record is not None and (record.trace_context, record.checkpoint) == ("tp", None)
        record.checkpoint = '{"page": 7}'
        await store.write([record], owner="me")
        again = await store.get("old-1")
        assert again is not None and again.checkpoint == '{"page": 7}'
    finally:
        await store.close()
    assert _user_version(path) == _sqlite_schema.schema_version()


async def test_migrations_run_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A v1 file is taken through each later migration once, and user_version records the result."""
    path = tmp_path / "v1.db"
    _raw(path, V1_DDL)
    v2 = ("ALTER TABLE taskflow_tasks ADD COLUMN priority INTEGER",)
    v3 = ("CREATE INDEX taskflow_tasks_priority ON taskflow_tasks (priority)",)
    monkeypatch.setattr(_sqlite_schema, "MIGRATIONS", [*_sqlite_schema.MIGRATIONS, v2, v3])
    for _ in range(2):  # the second open finds nothing to do
        store = SqliteStore(path)
        await store.open()
        assert await store.get("old-1") is not None
        await store.close()
    assert _user_version(path) == len(_sqlite_schema.MIGRATIONS)
    conn = sqlite3.connect(path)
    assert "priority" in [row[1] for row in conn.execute("PRAGMA table_info(taskflow_tasks)")]
    conn.close()


async def test_refuses_a_newer_schema(tmp_path: Path) -> None:
    """A file written by a newer taskflow is refused with a message saying to upgrade, and left as is."""
    path = tmp_path / "new.db"
    _raw(path, "PRAGMA user_version = 99;")
    with pytest.raises(RuntimeError, match="upgrade"):
        await SqliteStore(path).open()
    assert _user_version(path) == 99


async def test_shares_a_file_with_fastapi_taskflow_tables(tmp_path: Path) -> None:
    """An old fastapi-taskflow file (user_version 0) gets taskflow's tables; its own table is left alone."""
    path = tmp_path / "tasks.db"
    old = "CREATE TABLE task_snapshots (task_id TEXT PRIMARY KEY); INSERT INTO task_snapshots VALUES ('x')"
    _raw(path, old)
    store = SqliteStore(path)
    await store.open()
    await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT task_id FROM task_snapshots").fetchall() == [("x",)]
    conn.close()


@pytest.mark.parametrize(("given", "expected"), [(None, "FULL"), ("NORMAL", "NORMAL"), ("full", "FULL")])
async def test_wal_and_synchronous(tmp_path: Path, given: str | None, expected: str) -> None:
    """The store runs in WAL mode, at FULL unless `synchronous="NORMAL"` is asked for."""
    path = tmp_path / "t.db"
    store = SqliteStore(path) if given is None else SqliteStore(path, synchronous=given)
    assert ("synchronous=" in repr(store)) is (expected != "FULL")
    await store.open()
    try:
        assert store._conn is not None
        conn = store._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        levels = {"0": "OFF", "1": "NORMAL", "2": "FULL", "3": "EXTRA"}
        assert levels[str(conn.execute("PRAGMA synchronous").fetchone()[0])] == expected
    finally:
        await store.close()


def test_rejects_an_unknown_synchronous_level() -> None:
    """Only the two levels whose guarantees are documented are accepted (OFF loses commits on kill -9)."""
    for bad in ("OFF", "EXTRA", "", 2, None):
        with pytest.raises(ValueError, match="synchronous must be 'FULL' or 'NORMAL'"):
            SqliteStore("x.db", synchronous=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("where", "params", "statuses"),
    [
        ([], [], None),
        ([], [], frozenset({TaskStatus.SUCCESS})),
        ([], [], frozenset({TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.FAILED})),
        (["func_name = ?"], ["f"], None),
        (["created_at >= ?"], ["2024"], None),
        (["(created_at, task_id) < (?, ?)"], ["2024", "x"], frozenset(TaskStatus) - {TaskStatus.PENDING}),
    ],
)
def test_listing_queries_walk_an_index(
    tmp_path: Path, where: list[str], params: list[str], statuses: frozenset[TaskStatus] | None
) -> None:
    """Every page SELECT the store builds reads rows in index order (no full scan, no sort of all rows)."""
    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    _sqlite_ops.setup(conn, "t.db", "NORMAL")
    sql, args = _listing_sql(where, params, statuses, 11)
    plan = [(row[0], row[1], row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", args)]
    conn.close()
    reads = [step for _, _, step in plan if step.startswith(("SCAN taskflow_tasks", "SEARCH taskflow_tasks"))]
    assert reads and all("INDEX" in step for step in reads), plan
    for _, parent, step in plan:
        if "TEMP B-TREE" in step:
            # Only a merge of per-status sub-selects sorts, and only their outputs (each already limited).
            siblings = [other for _, p, other in plan if p == parent]
            assert any(other.startswith("SCAN (subquery") for other in siblings), plan


def test_rejects_bad_busy_timeout() -> None:
    """busy_timeout must be a finite, non-negative number of seconds."""
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="busy_timeout"):
            SqliteStore("x.db", busy_timeout=bad)
    with pytest.raises(TypeError, match="busy_timeout"):
        SqliteStore("x.db", busy_timeout="5")  # type: ignore[arg-type]


async def test_waits_out_another_process_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With another connection holding the write lock, a write retries (no "database is locked") and lands."""
    path = tmp_path / "t.db"
    store = SqliteStore(path, busy_timeout=0)  # no wait inside SQLite: the retry loop does the waiting
    await store.open()
    saw_busy = threading.Event()
    real_is_busy = _sqlite_ops.is_busy

    def spying_is_busy(exc: sqlite3.OperationalError) -> bool:
        busy = real_is_busy(exc)
        if busy:
            saw_busy.set()
        return busy

    monkeypatch.setattr(_sqlite_ops, "is_busy", spying_is_busy)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(store.write, [TaskRecord("t1", "f", TaskStatus.PENDING)], owner="i1"))
            assert await anyio.to_thread.run_sync(saw_busy.wait, 10)
            holder.execute("ROLLBACK")
        assert await store.get("t1") is not None
    finally:
        holder.close()
        await store.close()


async def test_lock_held_too_long_raises_the_sqlite_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retries are bounded: a lock never released ends in the last OperationalError, unchanged."""
    from taskflow.stores import _sqlite

    monkeypatch.setattr(_sqlite, "_BUSY_RETRIES", 2)
    monkeypatch.setattr(_sqlite, "_BUSY_BASE_DELAY", 0.0)
    path = tmp_path / "t.db"
    store = SqliteStore(path, busy_timeout=0)
    await store.open()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await store.write([TaskRecord("t1", "f", TaskStatus.PENDING)], owner="i1")
    finally:
        holder.close()
        await store.close()


async def test_use_before_open_is_an_error(tmp_path: Path) -> None:
    """Calling a store that was never opened raises RuntimeError saying to open it."""
    with pytest.raises(RuntimeError, match="open"):
        await SqliteStore(tmp_path / "t.db").get("x")


async def test_store_is_an_async_context_manager(tmp_path: Path) -> None:
    """`async with SqliteStore(...)` opens the store and closes it on exit."""
    async with SqliteStore(tmp_path / "t.db") as store:
        await store.write([TaskRecord("t1", "f", TaskStatus.PENDING)], owner="i1")
    with pytest.raises(RuntimeError, match="open"):
        await store.get("t1")


def test_every_record_field_has_a_column() -> None:
    """A field added to TaskRecord fails here until the schema stores it (with a new migration)."""
    import dataclasses

    stored = set(_sqlite_schema.COLUMNS.split(", ")) - {"call", "owner", "requeue"} | {"args", "kwargs"}
    stored.add("instance")  # read from the owner column
    assert {f.name for f in dataclasses.fields(TaskRecord)} == stored
